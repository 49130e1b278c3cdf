/**
 * Serving the console: the page and its modules, the browser libraries from node_modules,
 * and the public settings endpoint, with MAP_TILE_URL checked at boot.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import Fastify, { type FastifyInstance } from 'fastify'
import { consoleRoutes, consoleSettingsFromEnv } from '../../server/routes/console.js'
import { ConfigError } from '../../server/config.js'

describe('console settings from the environment', () => {
  it('has no tiles by default: markers on a plain background', () => {
    expect(consoleSettingsFromEnv({})).toEqual({ tileUrl: null, tileAttribution: '', mapCenter: [10.8231, 106.6297, 13], timeZone: 'Asia/Ho_Chi_Minh' })
  })

  it('shows times in the ward\'s zone: CONSOLE_TIME_ZONE, an IANA name, checked at boot', () => {
    expect(consoleSettingsFromEnv({ CONSOLE_TIME_ZONE: 'UTC' }).timeZone).toBe('UTC')
    expect(consoleSettingsFromEnv({ CONSOLE_TIME_ZONE: ' Asia/Bangkok ' }).timeZone).toBe('Asia/Bangkok')
    expect(() => consoleSettingsFromEnv({ CONSOLE_TIME_ZONE: 'GMT+7 Saigon' })).toThrow(ConfigError)
    expect(() => consoleSettingsFromEnv({ CONSOLE_TIME_ZONE: 'Asia/Nowhere' })).toThrow(/CONSOLE_TIME_ZONE must be an IANA time zone such as Asia\/Ho_Chi_Minh/)
  })

  it('takes a tile URL template, its attribution and a map centre', () => {
    const settings = consoleSettingsFromEnv({
      MAP_TILE_URL: 'https://tile.openstreetmap.org/{z}/{x}/{y}.png',
      MAP_CENTER: '10.86,106.70,15'
    })
    expect(settings).toEqual({
      tileUrl: 'https://tile.openstreetmap.org/{z}/{x}/{y}.png',
      tileAttribution: '© OpenStreetMap contributors',
      mapCenter: [10.86, 106.7, 15],
      timeZone: 'Asia/Ho_Chi_Minh'
    })
    expect(Object.isFrozen(settings)).toBe(true)
  })

  it('refuses a tile URL without {z}/{x}/{y} or not over http(s), and a bad centre, with readable errors', () => {
    expect(() => consoleSettingsFromEnv({ MAP_TILE_URL: 'https://tiles.example/{z}/{x}.png' })).toThrow(ConfigError)
    expect(() => consoleSettingsFromEnv({ MAP_TILE_URL: 'file:///tiles/{z}/{x}/{y}.png' })).toThrow(/MAP_TILE_URL must be an http\(s\) URL/)
    expect(() => consoleSettingsFromEnv({ MAP_CENTER: '10.8,north' })).toThrow(/MAP_CENTER must be "lat,lon,zoom"/)
  })
})

describe('console routes', () => {
  let app: FastifyInstance

  beforeAll(async () => {
    app = Fastify()
    await app.register(consoleRoutes, { settings: consoleSettingsFromEnv({ MAP_TILE_URL: 'https://{s}.tiles.example/{z}/{x}/{y}.png' }) })
    await app.ready()
  })
  afterAll(() => app.close())

  it('serves the page at / and revalidates it on every load', async () => {
    const page = await app.inject({ method: 'GET', url: '/' })
    expect(page.statusCode).toBe(200)
    expect(page.headers['content-type']).toMatch(/^text\/html/)
    expect(page.headers['cache-control']).toBe('no-cache')
    expect(page.body).toContain('<script type="module" src="/js/main.js">')
    const csp = String(page.headers['content-security-policy'])
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).toContain("img-src 'self' data: https://*.tiles.example")
    const main = await app.inject({ method: 'GET', url: '/js/main.js' })
    expect(main.headers['content-type']).toMatch(/javascript/)
  })

  it('serves the browser libraries the page imports, and nothing else of node_modules', async () => {
    for (const url of ['/vendor/leaflet/leaflet-src.esm.js', '/vendor/leaflet/leaflet.css', '/vendor/lit-html/lit-html.js',
      '/vendor/lit-html/directives/repeat.js', '/vendor/eventsource-parser/index.js']) {
      expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(200)
    }
    for (const url of ['/vendor/leaflet/../package.json', '/vendor/fastify/fastify.js', '/vendor/lit-html/../../package.json']) {
      expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(404)
    }
  })

  it('answers its settings without a token', async () => {
    const response = await app.inject({ method: 'GET', url: '/console/config' })
    expect(response.statusCode).toBe(200)
    expect(response.json()).toEqual({ tileUrl: 'https://{s}.tiles.example/{z}/{x}/{y}.png', tileAttribution: '', mapCenter: [10.8231, 106.6297, 13], timeZone: 'Asia/Ho_Chi_Minh' })
  })
})
