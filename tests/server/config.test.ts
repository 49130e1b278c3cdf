import { describe, expect, it } from 'vitest'
import { ConfigError, serverConfigFromEnv } from '../../server/config.js'

describe('server configuration', () => {
  it('has the documented defaults and is frozen', () => {
    const config = serverConfigFromEnv({})
    expect(config).toMatchObject({ cancelWindowMs: 30_000, escalateAfterMs: 60_000, gatewayLostAfterMs: 90_000, webhookUrls: [], eventsCompressAfterDays: 7, eventsRetentionDays: 365 })
    expect(Object.isFrozen(config)).toBe(true)
    expect(Object.isFrozen(config.webhookUrls)).toBe(true)
  })

  it('reads durations with units and webhook settings', () => {
    const config = serverConfigFromEnv({ CANCEL_WINDOW: '45', ESCALATE_AFTER: '2m', GATEWAY_LOST_AFTER: '5m', WEBHOOK_URLS: 'https://a.example/h, http://b.example/h', WEBHOOK_SECRET: 's', EVENTS_RETENTION_DAYS: '0' })
    expect(config).toMatchObject({ cancelWindowMs: 45_000, escalateAfterMs: 120_000, gatewayLostAfterMs: 300_000, webhookUrls: ['https://a.example/h', 'http://b.example/h'], eventsRetentionDays: 0 })
  })

  it.each([
    [{ ESCALATE_AFTER: 'soon' }, /ESCALATE_AFTER must be a duration/],
    [{ CANCEL_WINDOW: '10ms' }, /CANCEL_WINDOW must be a duration of at least 1000 ms/],
    // Shorter than a gateway's longest long poll: a live gateway would be counted lost.
    [{ GATEWAY_LOST_AFTER: '30s' }, /GATEWAY_LOST_AFTER must be a duration of at least 75000 ms/],
    [{ WEBHOOK_URLS: 'ftp://x' , WEBHOOK_SECRET: 's' }, /not an http\(s\) URL/],
    [{ WEBHOOK_URLS: 'https://x.example' }, /WEBHOOK_SECRET is required/],
    [{ EVENTS_RETENTION_DAYS: '5' }, /must be 0 \(keep\) or more than EVENTS_COMPRESS_AFTER_DAYS/],
    // Above the compression age, but inside the hourly summaries' 7-day refresh window.
    [{ EVENTS_RETENTION_DAYS: '8', EVENTS_COMPRESS_AFTER_DAYS: '1' }, /must be 0 \(keep\) or at least 9/],
    [{ EVENTS_COMPRESS_AFTER_DAYS: '-1' }, /whole number of days/]
  ])('refuses %o with a readable error', (env, message) => {
    expect(() => serverConfigFromEnv(env)).toThrow(ConfigError)
    expect(() => serverConfigFromEnv(env)).toThrow(message)
  })
  it('refuses an admin or gateway token left at the example\'s placeholder, or a few characters long', () => {
    // ADMIN_TOKEN=a started without a word, and `Bearer a` then made itself a new admin token.
    expect(() => serverConfigFromEnv({ ADMIN_TOKEN: 'a' })).toThrow(/ADMIN_TOKEN must be at least 8 characters/)
    expect(() => serverConfigFromEnv({ ADMIN_TOKEN: 'change-me-admin-token' })).toThrow(/ADMIN_TOKEN is still the example's placeholder/)
    expect(() => serverConfigFromEnv({ GATEWAY_TOKEN: 'change-me-gateway-token' })).toThrow(ConfigError)
    expect(serverConfigFromEnv({ ADMIN_TOKEN: 'smoke-12345', GATEWAY_TOKEN: 'gw_0123456789abcdef' })).toMatchObject({ adminToken: 'smoke-12345', gatewayToken: 'gw_0123456789abcdef' })
  })
})
