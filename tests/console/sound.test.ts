/**
 * A wall display restarted with its kept token has had no click, and the browser keeps its
 * page silent until it gets one: the console says so across its whole width, and one click on
 * that warning turns the sound on. (A small "enable sound" button was all it showed before.)
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium, type Browser } from 'playwright-core'
import { startServer, type RunningServer } from '../../server/server.js'
import { serverConfigFromEnv } from '../../server/config.js'
import { CHROMIUM } from './browser.js'

const ADMIN = 'admin_console_sound_test'

describe('operator console without a click yet', { timeout: 60_000 }, () => {
  let server: RunningServer
  let browser: Browser
  let dataDir: string

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'sos-console-sound-'))
    server = await startServer({ ...serverConfigFromEnv({}), httpPort: 0, httpHost: '127.0.0.1', dataDir, adminToken: ADMIN, gatewayToken: 'gw_console_sound_test' })
    // As a desktop browser: no sound before a gesture on the page.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--autoplay-policy=document-user-activation-required']
    })
  }, 180_000)

  afterAll(async () => {
    await browser?.close()
    await server?.close()
    if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  })

  it('warns across the page that alarms will be silent, until a click on the warning turns the sound on', async () => {
    const page = await (await browser.newContext({ locale: 'en-GB' })).newPage()
    await page.goto(`${server.url}/#token=${ADMIN}`)
    await page.locator('[data-connection="live"]').waitFor()
    const warning = page.locator('.sound-warning')
    await warning.waitFor()
    expect(await warning.getAttribute('role')).toBe('alert')
    await warning.click()
    await warning.waitFor({ state: 'detached' })
    expect(await page.locator('button.sound.on').count()).toBe(1)
  })
})
