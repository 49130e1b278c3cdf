/**
 * A wall display restarted with its kept token has had no click, and the browser keeps its
 * page silent until it gets one: the console says so across its whole width, and one click on
 * that warning turns the sound on. (A small "enable sound" button was all it showed before.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser } from 'playwright-core'
import { launchChromium } from './browser.js'
import { startConsoleServer } from './server.js'

const ADMIN = 'admin_console_sound_test'

describe('operator console without a click yet', { timeout: 60_000 }, () => {
  let server: Awaited<ReturnType<typeof startConsoleServer>>
  let browser: Browser

  beforeAll(async () => {
    server = await startConsoleServer('sound', { admin: ADMIN, gateway: 'gw_console_sound_test' })
    // As a desktop browser: no sound before a gesture on the page.
    browser = await launchChromium('document-user-activation-required')
  }, 180_000)

  afterAll(async () => {
    await browser?.close()
    await server?.close()
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
