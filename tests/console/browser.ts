/**
 * Debian's Chromium driven by playwright-core (no browser download): headless, no sandbox
 * (tests run as root), no background networking (this machine has no way out).
 * `page.beeps()` counts the console's audible cues by watching Web Audio oscillators start;
 * `page.tones()` takes the frequencies started since the last call (which sound it was: sound.js).
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

export type ConsolePage = Page & { beeps(): Promise<number>, tones(): Promise<number[]> }

export async function consolePage (browser: Browser, options: { locale?: string, timezoneId?: string } = {}): Promise<ConsolePage> {
  const context = await browser.newContext({ viewport: { width: 1600, height: 900 }, locale: options.locale ?? 'vi-VN', timezoneId: options.timezoneId ?? 'Asia/Ho_Chi_Minh' })
  await context.addInitScript(() => {
    const w = window as unknown as { __oscillators: number, __tones: number[] }
    w.__oscillators = 0
    w.__tones = []
    const start = OscillatorNode.prototype.start
    OscillatorNode.prototype.start = function (...args: Parameters<typeof start>) {
      w.__oscillators++
      w.__tones.push(this.frequency.value)
      return start.apply(this, args)
    }
  })
  const page = await context.newPage() as ConsolePage
  page.beeps = () => page.evaluate(() => (window as unknown as { __oscillators: number }).__oscillators)
  page.tones = () => page.evaluate(() => {
    const w = window as unknown as { __tones: number[] }
    const tones = w.__tones
    w.__tones = []
    return tones
  })
  return page
}

export async function screenshot (page: Page, name: string): Promise<string> {
  mkdirSync(OUTPUT_DIR, { recursive: true })
  const path = join(OUTPUT_DIR, `${name}.png`)
  await page.screenshot({ path })
  return path
}
