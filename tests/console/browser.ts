/**
 * Debian's Chromium driven by playwright-core (no browser download): headless, no sandbox
 * (tests run as root), no background networking (this machine has no way out).
 * `page.beeps()` counts the console's audible cues by watching Web Audio oscillators start.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
export const OUTPUT_DIR = join(process.cwd(), 'test-output')

/** `autoplay`: sound without a click (the default, so cues can be counted), or as a desktop browser. */
export function launchChromium (autoplay: 'no-user-gesture-required' | 'document-user-activation-required' = 'no-user-gesture-required'): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', `--autoplay-policy=${autoplay}`]
  })
}

export async function consolePage (browser: Browser, options: { locale?: string } = {}): Promise<Page & { beeps(): Promise<number> }> {
  const context = await browser.newContext({ viewport: { width: 1600, height: 900 }, locale: options.locale ?? 'vi-VN', timezoneId: 'Asia/Ho_Chi_Minh' })
  await context.addInitScript(() => {
    const w = window as unknown as { __oscillators: number }
    w.__oscillators = 0
    const start = OscillatorNode.prototype.start
    OscillatorNode.prototype.start = function (...args: Parameters<typeof start>) {
      w.__oscillators++
      return start.apply(this, args)
    }
  })
  const page = await context.newPage() as Page & { beeps(): Promise<number> }
  page.beeps = () => page.evaluate(() => (window as unknown as { __oscillators: number }).__oscillators)
  return page
}

export async function screenshot (page: Page, name: string): Promise<string> {
  mkdirSync(OUTPUT_DIR, { recursive: true })
  const path = join(OUTPUT_DIR, `${name}.png`)
  await page.screenshot({ path })
  return path
}
