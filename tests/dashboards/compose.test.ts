/**
 * docker-compose.yml is valid for Debian's docker-compose, and what Grafana mounts matches what
 * `dashboards/` holds: a fresh `docker compose up` finds its provisioning where it looks.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import pg from 'pg'
import { dashboardsDir, loadYamlDir, repoRoot } from './grafana/provisioning.js'
import { createTestDatabase, testDatabaseUrl } from '../helpers/postgres.js'
import { openPostgres } from '../../server/db/postgres.js'
import { migrate } from '../../server/db/migrate.js'
import { migrations } from '../../server/db/migrations.js'

const compose = (...args: string[]): string =>
  execFileSync('docker-compose', ['--env-file', '.env.example', ...args], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })

interface Mount { source: string, target: string, readOnly: boolean }

/** `docker-compose config` prints binds as `src:dst[:mode]` or in the long form; read both. */
function bindMounts (service: any): Mount[] {
  return (service.volumes ?? []).flatMap((v: any): Mount[] => {
    if (typeof v === 'string') {
      const [source, target, mode] = v.split(':')
      return source!.startsWith('/') || source!.startsWith('.') ? [{ source: resolve(repoRoot, source!), target: target!, readOnly: mode === 'ro' }] : []
    }
    return v.type === 'bind' ? [{ source: resolve(repoRoot, v.source), target: v.target, readOnly: v.read_only === true }] : []
  })
}

describe('docker-compose.yml', () => {
  const config = parseYaml(compose('config')) as { services: Record<string, any> }
  const grafana = config.services.grafana

  it('passes `docker-compose config -q` with the example environment', () => {
    expect(() => compose('config', '-q')).not.toThrow()
  })

  it('runs TimescaleDB, server, gateway and Grafana on pinned images', () => {
    expect(Object.keys(config.services)).toEqual(expect.arrayContaining(['timescaledb', 'server', 'gateway', 'grafana']))
    for (const [name, service] of Object.entries(config.services)) {
      if (service.image) expect(service.image, name).toMatch(/:(?!latest$)\d[\w.-]*$/)
      else expect(service.build, `${name} has neither image nor build`).toBeDefined()
    }
  })

  it('starts each service after what it needs is healthy, and every dependency has a healthcheck', () => {
    for (const [name, service] of Object.entries(config.services)) {
      for (const [dependency, condition] of Object.entries<any>(service.depends_on ?? {})) {
        expect(condition.condition, `${name} → ${dependency}`).toBe('service_healthy')
        expect(config.services[dependency]?.healthcheck?.test, `${dependency} healthcheck`).toBeDefined()
      }
    }
    for (const name of ['timescaledb', 'server', 'gateway', 'grafana']) {
      expect(config.services[name].healthcheck?.test, name).toBeDefined()
    }
    expect(JSON.stringify(config.services.timescaledb.healthcheck.test)).toContain('pg_isready')
  })

  it("mounts Grafana's provisioning and dashboards read-only from the folders in dashboards/", () => {
    const mounts = bindMounts(grafana)
    const provisioning = mounts.find((m) => m.target === '/etc/grafana/provisioning')
    expect(provisioning, 'provisioning mount').toBeDefined()
    expect(relative(repoRoot, provisioning!.source)).toBe(join('dashboards', 'provisioning'))
    for (const sub of ['datasources', 'dashboards', 'alerting']) {
      expect(statSync(join(provisioning!.source, sub)).isDirectory(), sub).toBe(true)
    }
    // The dashboard provider's path is a mount of a folder in dashboards/ holding the JSON models.
    const providers = loadYamlDir<{ providers: Array<{ options: { path: string } }> }>('dashboards').flatMap((f) => f.doc.providers)
    expect(providers.length).toBeGreaterThan(0)
    for (const provider of providers) {
      const mount = mounts.find((m) => m.target === provider.options.path)
      expect(mount, `mount for ${provider.options.path}`).toBeDefined()
      expect(relative(dashboardsDir, mount!.source).startsWith('..')).toBe(false)
      expect(existsSync(join(mount!.source, 'operations.json'))).toBe(true)
    }
    for (const m of mounts) {
      expect(existsSync(m.source), m.source).toBe(true)
      expect(m.readOnly, `${m.target} read-only`).toBe(true)
    }
    // The home dashboard Grafana opens is one of the mounted files.
    const home = grafana.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH as string
    const homeMount = mounts.find((m) => home.startsWith(m.target + '/'))
    expect(existsSync(join(homeMount!.source, home.slice(homeMount!.target.length)))).toBe(true)
  })

  it('gives Grafana every environment variable its provisioning files refer to, and the admin password', () => {
    const provisioningText = ['datasources', 'dashboards', 'alerting']
      .flatMap((sub) => loadYamlDir(sub).map((f) => readFileSync(join(dashboardsDir, 'provisioning', sub, f.file), 'utf8')))
      .join('\n')
      .replace(/^\s*#.*$/gm, '')
    const referenced = new Set([...provisioningText.matchAll(/\$\{?([A-Z][A-Z0-9_]+)\}?/g)].map((m) => m[1]!))
    expect(referenced.size).toBeGreaterThan(0)
    for (const name of referenced) expect(grafana.environment[name], name).toBeTruthy()
    expect(grafana.environment.GF_SECURITY_ADMIN_PASSWORD).toBe('change-me')
  })

  it('takes ports and secrets from .env (nothing secret is written into the compose file)', () => {
    const raw = readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8')
    const example = readFileSync(join(repoRoot, '.env.example'), 'utf8')
    const required = [...raw.matchAll(/\$\{([A-Z0-9_]+)(?::[?-][^}]*)?\}/g)].map((m) => m[1]!)
    for (const name of new Set(required)) expect(example, `${name} in .env.example`).toMatch(new RegExp(`^${name}=`, 'm'))
    for (const secret of ['POSTGRES_PASSWORD', 'GRAFANA_DB_PASSWORD', 'ADMIN_TOKEN', 'GATEWAY_TOKEN', 'GRAFANA_ADMIN_PASSWORD']) {
      expect(raw).toContain(`\${${secret}`)
    }
  })

  it('creates the read-only Grafana login when the database volume is first initialised', () => {
    // The file alone: the image's own init scripts (extension, tuning) stay beside it.
    const mount = bindMounts(config.services.timescaledb).find((m) => m.target === '/docker-entrypoint-initdb.d/10-grafana-reader.sh')
    expect(mount).toBeDefined()
    const script = readFileSync(mount!.source, 'utf8')
    expect(script).toContain('CREATE ROLE grafana_reader')
    expect(grafana.environment.SOS_DB_READER_USER).toBe('grafana_reader')
  })
})

// On the PostgreSQL that CI runs (TEST_DATABASE_URL), the script does what it promises.
if (testDatabaseUrl) {
  describe('the read-only Grafana login (PostgreSQL)', () => {
    const script = join(dashboardsDir, 'timescaledb-init', '10-grafana-reader.sh')

    it('can read tables the owner creates later, cannot write, and the script can run again', async () => {
      const database = await createTestDatabase()
      const url = new URL(database.url)
      const env = {
        ...process.env, PGHOST: url.hostname, PGPORT: url.port || '5432', PGPASSWORD: decodeURIComponent(url.password),
        POSTGRES_USER: decodeURIComponent(url.username), POSTGRES_DB: url.pathname.slice(1), GRAFANA_DB_PASSWORD: "it's-a-test"
      }
      const owner = new pg.Client({ connectionString: database.url })
      await owner.connect()
      try {
        execFileSync('sh', [script], { env, stdio: 'pipe' })
        execFileSync('sh', [script], { env, stdio: 'pipe' }) // idempotent: an older volume gets it too
        await owner.query('CREATE TABLE later (x int); INSERT INTO later VALUES (1)')
        const readerUrl = new URL(database.url)
        readerUrl.username = 'grafana_reader'
        readerUrl.password = "it's-a-test"
        const reader = new pg.Client({ connectionString: readerUrl.toString() })
        await reader.connect()
        try {
          expect((await reader.query('SELECT x FROM later')).rows).toEqual([{ x: 1 }])
          await expect(reader.query('INSERT INTO later VALUES (2)')).rejects.toThrow(/permission denied/)
          expect((await reader.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('30s')
          expect((await reader.query('SHOW idle_in_transaction_session_timeout')).rows[0].idle_in_transaction_session_timeout).toBe('1min')
          // The server's advisory locks (downlink order, migrations, gateway watch) are not the dashboards' to take.
          for (const call of ['SELECT pg_advisory_lock(727275)', 'SELECT pg_try_advisory_lock(727276)', 'SELECT pg_advisory_xact_lock(1, 2)']) {
            await expect(reader.query(call), call).rejects.toThrow(/permission denied/)
          }
        } finally {
          await reader.end()
        }
      } finally {
        await owner.query('DROP OWNED BY grafana_reader').catch(() => {})
        await owner.end()
        await database.drop()
        const admin = new pg.Client({ connectionString: testDatabaseUrl })
        await admin.connect()
        await admin.query('DROP ROLE IF EXISTS grafana_reader').catch(() => {})
        await admin.end()
      }
    })

    it('leaves the advisory locks to a server that is no superuser: the database owner, and SOS_SERVER_DB_ROLE', async () => {
      // Run by a superuser (as the image's init does), for a database a plain role owns, and a
      // server that may log in as yet another role: the server migrates and takes its locks.
      const suffix = Math.random().toString(36).slice(2, 8)
      const [ownerRole, serverRole, dbName] = [`sos_owner_${suffix}`, `sos_server_${suffix}`, `sos_reader_${suffix}`]
      const admin = new pg.Client({ connectionString: testDatabaseUrl })
      await admin.connect()
      const as = (role: string) => { const u = new URL(testDatabaseUrl!); u.username = role; u.password = 'pw'; u.pathname = `/${dbName}`; return u.toString() }
      try {
        await admin.query(`CREATE ROLE ${ownerRole} LOGIN NOSUPERUSER PASSWORD 'pw'; CREATE ROLE ${serverRole} LOGIN NOSUPERUSER PASSWORD 'pw'`)
        await admin.query(`CREATE DATABASE ${dbName} OWNER ${ownerRole}`)
        const url = new URL(testDatabaseUrl!)
        const env = {
          ...process.env, PGHOST: url.hostname, PGPORT: url.port || '5432', PGPASSWORD: decodeURIComponent(url.password),
          POSTGRES_USER: decodeURIComponent(url.username), POSTGRES_DB: dbName, GRAFANA_DB_PASSWORD: 'pw', SOS_SERVER_DB_ROLE: serverRole
        }
        execFileSync('sh', [script], { env, stdio: 'pipe' })
        for (const role of [ownerRole, serverRole]) {
          const client = new pg.Client({ connectionString: as(role) })
          await client.connect()
          try {
            await client.query('BEGIN')
            await client.query('SELECT pg_advisory_xact_lock(727275)')
            expect((await client.query('SELECT pg_try_advisory_xact_lock(727276) AS ok')).rows[0].ok, role).toBe(true)
            await client.query('COMMIT')
          } finally {
            await client.end()
          }
        }
        const ownerDb = await openPostgres(as(ownerRole))
        try {
          expect((await migrate(ownerDb)).length).toBe(migrations.length)
        } finally {
          await ownerDb.close()
        }
        const reader = new pg.Client({ connectionString: as('grafana_reader') })
        await reader.connect()
        try {
          await expect(reader.query('SELECT pg_advisory_lock(727275)')).rejects.toThrow(/permission denied/)
          // Nor the key the server instances sign their bus with (migration 11), however the
          // script and the migrations came one after the other.
          await expect(reader.query('SELECT value FROM sos_secrets')).rejects.toThrow(/permission denied/)
          // The tables the owner's migrations made after the script are the dashboards' to read.
          expect((await reader.query('SELECT count(*)::int AS n FROM alerts')).rows[0].n).toBe(0)
          execFileSync('sh', [script], { env, stdio: 'pipe' })
          await expect(reader.query('SELECT value FROM sos_secrets')).rejects.toThrow(/permission denied/)
          expect((await reader.query('SELECT count(*)::int AS n FROM alerts')).rows[0].n).toBe(0)
        } finally {
          await reader.end()
        }
      } finally {
        await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {})
        for (const role of ['grafana_reader', ownerRole, serverRole]) await admin.query(`DROP ROLE IF EXISTS ${role}`).catch(() => {})
        await admin.end()
      }
    })
  })
}
