/**
 * The gateway's configuration refuses, at start, a GATEWAY_ID the server would refuse on every
 * request and event (every batch refused and sent again forever, nothing forwarded).
 */
import { describe, expect, it } from 'vitest'
import { gatewayConfigFromEnv } from '../../gateway/config.js'
import { ConfigError } from '../../server/config.js'

const base = { SERVER_URL: 'http://127.0.0.1:8080', GATEWAY_TOKEN: 'gw_token_for_config_tests' }

describe('gateway configuration', () => {
  it('takes a GATEWAY_ID of 1 to 64 characters, any script', () => {
    expect(gatewayConfigFromEnv({ ...base, GATEWAY_ID: 'gw-phường-1' }).gatewayId).toBe('gw-phường-1')
    expect(gatewayConfigFromEnv({ ...base, GATEWAY_ID: 'g'.repeat(64) }).gatewayId).toBe('g'.repeat(64))
  })

  it('refuses a GATEWAY_ID the server would refuse: too long, or with control characters', () => {
    expect(() => gatewayConfigFromEnv({ ...base, GATEWAY_ID: 'g'.repeat(65) })).toThrow(ConfigError)
    expect(() => gatewayConfigFromEnv({ ...base, GATEWAY_ID: 'g'.repeat(65) })).toThrow(/GATEWAY_ID must be 1 to 64 characters/)
    expect(() => gatewayConfigFromEnv({ ...base, GATEWAY_ID: 'gw\u0000one' })).toThrow(/GATEWAY_ID must not hold control characters/)
  })

  it('names itself after its host by default, within 64 characters', () => {
    const { gatewayId } = gatewayConfigFromEnv(base)
    expect(gatewayId).toMatch(/^gw-/)
    expect(gatewayId.length).toBeLessThanOrEqual(64)
  })
})
