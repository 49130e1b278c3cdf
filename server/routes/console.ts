/**
 * The operator console: static ES modules served at `/` (no build step), the few browser
 * libraries it uses served from node_modules under `/vendor/`, and `GET /console/config`,
 * the settings the page needs before it can sign in (map tiles, the ward's time zone).
 *
 * Settings come from the environment once, at boot, checked with readable errors.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsync } from 'fastify'
import { ConfigError } from '../config.js'

export interface ConsoleSettings {
  /** XYZ tile URL template (`{z}/{x}/{y}`, optional `{s}`); null = markers on a plain background. */
  readonly tileUrl: string | null
  readonly tileAttribution: string
  /** Where the map looks before any device is known: [lat, lon, zoom]. */
  readonly mapCenter: readonly [number, number, number]
  /** CONSOLE_TIME_ZONE: the IANA zone the console shows times in, whatever the PC's own is. */
  readonly timeZone: string
}

/** The ward the system was made for (DESIGN.md §1) is in Ho Chi Minh City. */
export const DEFAULT_CONSOLE_TIME_ZONE = 'Asia/Ho_Chi_Minh'

/** An IANA time zone name that Intl knows (browsers know the same names), or a ConfigError. */
function timeZone (raw: string | undefined): string {
  if (!raw) return DEFAULT_CONSOLE_TIME_ZONE
  try {
    // Kept as given: Intl would answer a canonical alias (Asia/Saigon for Asia/Ho_Chi_Minh).
    new Intl.DateTimeFormat('en', { timeZone: raw }).format(0)
    return raw
  } catch {
    throw new ConfigError(`CONSOLE_TIME_ZONE must be an IANA time zone such as Asia/Ho_Chi_Minh or UTC, got "${raw}"`)
  }
}

export function consoleSettingsFromEnv (env: NodeJS.ProcessEnv = process.env): ConsoleSettings {
  const tileUrl = env.MAP_TILE_URL || null
  if (tileUrl !== null) {
    let parsed: URL | null = null
    try { parsed = new URL(tileUrl.replace(/\{[a-z]\}/g, '0')) } catch {}
    if (!parsed || !/^https?:$/.test(parsed.protocol) || !['{z}', '{x}', '{y}'].every((p) => tileUrl.includes(p))) {
      throw new ConfigError(`MAP_TILE_URL must be an http(s) URL template with {z}, {x} and {y}, got "${tileUrl}"`)
    }
  }
  const center = (env.MAP_CENTER || '10.8231,106.6297,13').split(',').map(Number)
  const [lat, lon, zoom] = center
  if (center.length !== 3 || lat === undefined || lon === undefined || zoom === undefined ||
      !(Math.abs(lat) <= 90 && Math.abs(lon) <= 180 && zoom >= 0 && zoom <= 20)) {
    throw new ConfigError(`MAP_CENTER must be "lat,lon,zoom", got "${env.MAP_CENTER}"`)
  }
  return Object.freeze({
    tileUrl,
    tileAttribution: env.MAP_TILE_ATTRIBUTION || (tileUrl?.includes('openstreetmap.org') ? '© OpenStreetMap contributors' : ''),
    mapCenter: Object.freeze([lat, lon, zoom] as const),
    timeZone: timeZone(env.CONSOLE_TIME_ZONE?.trim())
  })
}

/** The folder of an installed package (works whatever its `exports` field allows). */
function packageDir (name: string): string {
  const require = createRequire(import.meta.url)
  for (const base of require.resolve.paths(name) ?? []) {
    const dir = join(base, name)
    if (existsSync(join(dir, 'package.json'))) return dir
  }
  throw new Error(`package ${name} is not installed`)
}

/** Browser libraries, each under `/vendor/{name}/`; only these folders are exposed. */
const VENDOR: Record<string, string> = {
  leaflet: join(packageDir('leaflet'), 'dist'),
  'lit-html': packageDir('lit-html'),
  'eventsource-parser': join(packageDir('eventsource-parser'), 'dist')
}

const CONSOLE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'console')

/**
 * The page's Content-Security-Policy: its own scripts only (no inline script, nothing injected
 * through a resident's report text can run), API calls to this server only, map tiles from the
 * configured host, and never inside another site's frame (no clickjacking of the action buttons).
 */
export function contentSecurityPolicy (settings: ConsoleSettings): string {
  const tileOrigin = settings.tileUrl ? /^https?:\/\/[^/]+/.exec(settings.tileUrl)?.[0].replace(/\{s\}/g, '*') : undefined
  return [
    "default-src 'self'",
    "script-src 'self'",
    // Leaflet positions map panes with inline styles.
    "style-src 'self' 'unsafe-inline'",
    `img-src 'self' data:${tileOrigin ? ` ${tileOrigin}` : ''}`,
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'"
  ].join('; ')
}

export const consoleRoutes: FastifyPluginAsync<{ settings: ConsoleSettings }> = async (app, { settings }) => {
  const csp = contentSecurityPolicy(settings)
  app.get('/console/config', {
    schema: { tags: ['console'], summary: 'Public settings of the operator console (map tiles, time zone)', hide: true }
  }, async () => settings)

  // The page and its modules change with each release: browsers revalidate (ETag) every time.
  await app.register(fastifyStatic, {
    root: CONSOLE_DIR,
    prefix: '/',
    decorateReply: false,
    wildcard: false,
    cacheControl: false,
    setHeaders: (reply, path) => {
      reply.header('cache-control', 'no-cache')
      if (path.endsWith('.html')) reply.header('content-security-policy', csp).header('x-content-type-options', 'nosniff')
    }
  })
  for (const [name, root] of Object.entries(VENDOR)) {
    await app.register(fastifyStatic, { root, prefix: `/vendor/${name}/`, decorateReply: false, wildcard: false, maxAge: '1h' })
  }
}
