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
  it('refuses client certificates required with no CA to check them against, and a flag that is neither true nor false', () => {
    // Taken as false, it let a device in on a password alone where certificates were asked for.
    const tls = { ...base, TLS_CERT_FILE: '/etc/sos/cert.pem', TLS_KEY_FILE: '/etc/sos/key.pem' }
    expect(() => gatewayConfigFromEnv({ ...tls, TLS_REQUIRE_CLIENT_CERT: 'true' })).toThrow(/TLS_REQUIRE_CLIENT_CERT=true needs TLS_CA_FILE/)
    expect(() => gatewayConfigFromEnv({ ...tls, TLS_CA_FILE: '/etc/sos/ca.pem', TLS_REQUIRE_CLIENT_CERT: 'yes' })).toThrow(/TLS_REQUIRE_CLIENT_CERT must be true or false, got "yes"/)
    expect(gatewayConfigFromEnv({ ...tls, TLS_CA_FILE: '/etc/sos/ca.pem', TLS_REQUIRE_CLIENT_CERT: 'true' }).tlsRequireClientCert).toBe(true)
    expect(gatewayConfigFromEnv({ ...tls, TLS_REQUIRE_CLIENT_CERT: 'false' }).tlsRequireClientCert).toBe(false)
  })

  it('refuses a SERVER_URL that is not an http(s) URL, and drops a trailing slash', () => {
    for (const bad of ['notaurl', 'ftp://server/', 'server:8080']) expect(() => gatewayConfigFromEnv({ ...base, SERVER_URL: bad })).toThrow(/SERVER_URL must be an http:\/\/ or https:\/\/ URL/)
    expect(() => gatewayConfigFromEnv({ ...base, SERVER_URL: 'http://server:8080?x=1' })).toThrow(/SERVER_URL must have no query or fragment/)
    expect(gatewayConfigFromEnv({ ...base, SERVER_URL: 'https://sos.example.org/' }).serverUrl).toBe('https://sos.example.org')
  })

  it('shuts a babbling connection down at 2 000 refusals in 10 s, 5 s first and up to 60 s; BABBLING_REFUSALS=0 never, and never a bar under 100', () => {
    expect(gatewayConfigFromEnv(base).babblingShutdown).toEqual({ refusals: 2000, windowMs: 10_000, firstHoldOffMs: 5000, holdOffMs: 60_000, rememberMs: 600_000 })
    expect(gatewayConfigFromEnv({ ...base, BABBLING_REFUSALS: '0', BABBLING_HOLD_OFF_S: '30' }).babblingShutdown).toMatchObject({ refusals: 0, holdOffMs: 30_000 })
    expect(gatewayConfigFromEnv({ ...base, BABBLING_REFUSALS: '100' }).babblingShutdown?.refusals).toBe(100)
    for (const bad of ['-1', '1', '99', 'many']) expect(() => gatewayConfigFromEnv({ ...base, BABBLING_REFUSALS: bad }), bad).toThrow(/BABBLING_REFUSALS/)
    expect(() => gatewayConfigFromEnv({ ...base, BABBLING_HOLD_OFF_S: '0' })).toThrow(/BABBLING_HOLD_OFF_S/)
  })
})
