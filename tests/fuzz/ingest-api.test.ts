/**
 * Property-based tests of `POST /v1/ingest` through fastify's inject, on every storage engine:
 * arbitrary JSON never gets a 5xx (the gateway would retry a 5xx forever), and any valid batch
 * is idempotent — sent again, in any order and split any way, it stores nothing new.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import { openDatabase, type Database } from '../../server/db/database.js'
import { migrate } from '../../server/db/migrate.js'
import { buildApp } from '../../server/app.js'
import { storageBackends } from '../helpers/postgres.js'
import { parseDeviceEvent } from '../../protocol/index.js'
import { anyValidEvent, gatewayEventOf, runs } from './arbitraries.js'

const gatewayToken = 'gw_fuzz_token_0123456789'
const adminToken = 'admin_fuzz_token_0123456789'

describe.each(storageBackends)('POST /v1/ingest under fuzzing on $name', (backend) => {
  let app: FastifyInstance
  let db: Database
  let dataDir: string
  let dropDatabase: () => Promise<void>

  beforeAll(async () => {
    const target = await backend.databaseUrl()
    dropDatabase = target.drop
    dataDir = mkdtempSync(join(tmpdir(), 'sos-fuzz-'))
    db = await openDatabase({ databaseUrl: target.url, dataDir })
    await migrate(db)
    app = await buildApp({ db, staticTokens: [{ token: gatewayToken, role: 'gateway', name: 'gw' }, { token: adminToken, role: 'admin', name: 'admin' }] })
    for (const id of ['fz-a01', 'fz-b02']) {
      const r = await app.inject({ method: 'POST', url: '/v1/devices', headers: { authorization: `Bearer ${adminToken}` }, payload: { id, kind: 'button', name: id, zone: 'z-1', lat: 0, lon: 0 } })
      expect(r.statusCode).toBe(201)
    }
  })

  afterAll(async () => {
    await app?.close()
    await db?.close()
    await dropDatabase?.()
    rmSync(dataDir, { recursive: true, force: true })
  })

  const ingest = (payload: unknown, raw = false) => app.inject({
    method: 'POST',
    url: '/v1/ingest',
    headers: { authorization: `Bearer ${gatewayToken}`, 'content-type': 'application/json' },
    payload: raw ? payload as string : JSON.stringify(payload)
  })

  it('answers arbitrary JSON and near-miss batches with 2xx or 4xx, never 5xx', async () => {
    const nearMiss = fc.array(fc.oneof(
      anyValidEvent.map((e) => gatewayEventOf('fz-a01', e, Date.now())),
      fc.record({ eventId: fc.string(), deviceId: fc.string(), gatewayId: fc.string(), receivedAt: fc.oneof(fc.integer(), fc.double()), skewed: fc.jsonValue(), event: fc.jsonValue() }, { requiredKeys: [] })
    ), { maxLength: 5 }).map((events) => ({ events }))
    const body = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null'),
      nearMiss.map((v) => JSON.stringify(v)),
      fc.string({ unit: 'binary', maxLength: 200 })
    )
    await fc.assert(fc.asyncProperty(body, async (payload) => {
      const r = await ingest(payload, true)
      expect(r.statusCode, r.body).toBeLessThan(500)
      if (r.statusCode >= 400) expect(Object.keys(JSON.parse(r.body)).sort()).toEqual(['code', 'message', 'statusCode'])
    }), { numRuns: runs(150) })
  })

  it('stores a valid batch once: sent again, shuffled and split, every event is a duplicate', async () => {
    let boot = 0
    const batch = fc.uniqueArray(fc.tuple(fc.constantFrom('fz-a01', 'fz-b02'), anyValidEvent), { minLength: 1, maxLength: 12, selector: ([d, e]) => `${d}/${e.seq}` })
    await fc.assert(fc.asyncProperty(batch, fc.nat(), async (items, cut) => {
      // A fresh boot per run, so runs do not collide with one another.
      const b = `fz${boot++}`
      const events = items.map(([device, e]) => gatewayEventOf(device, { ...e, boot: b }, Date.now()))
      const first = await ingest({ events })
      expect(first.statusCode, first.body).toBe(200)
      expect(first.json().results.map((r: { status: string }) => r.status)).toEqual(events.map(() => 'stored'))
      const again = [...events].reverse()
      const at = cut % (again.length + 1)
      for (const part of [again.slice(0, at), again.slice(at)]) {
        if (part.length === 0) continue
        const r = await ingest({ events: part })
        expect(r.statusCode).toBe(200)
        expect(r.json().results.every((x: { status: string }) => x.status === 'duplicate')).toBe(true)
      }
      const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE boot = $1', [b])
      expect(Number(rows[0]!.n)).toBe(events.length)
    }), { numRuns: runs(40) })
  })

  // U+0000 is legal JSON but PostgreSQL text/jsonb refuse it: one such event used to fail its
  // whole batch (500) and the gateway resent that batch forever, stalling every alert behind it.
  // The server now replaces NUL with U+FFFD (server/plugins/storable-text.ts).
  it('stores every event the validator accepts, whatever Unicode its strings hold (U+0000 included)', async () => {
    let seq = 0
    const text = fc.string({ unit: 'binary', maxLength: 40 })
    const event = fc.oneof(
      fc.record({ type: fc.constant('heartbeat'), fw: text.filter((t) => t.length > 0 && t.length <= 32) }),
      fc.record({ type: fc.constant('report'), report: fc.record({ category: fc.constant('other'), text }) })
    )
    await fc.assert(fc.asyncProperty(event, async (candidate) => {
      const parsed = parseDeviceEvent(JSON.stringify({ seq: ++seq, boot: 'unicode', ...candidate }))
      if (!parsed.ok) return
      const r = await ingest({ events: [gatewayEventOf('fz-a01', parsed.event, Date.now())] })
      expect(r.statusCode, r.body).toBe(200)
    }), { numRuns: runs(100), examples: [[{ type: 'heartbeat', fw: 'v1\u00002' }]] })
  })

  // What no validator let through, from a buggy or forged gateway: NUL and lone surrogates in
  // keys and values. PostgreSQL refuses both; each is stored as U+FFFD instead of being
  // refused (or, before the server split such batches, failing its batch forever).
  it('stores an event whatever UTF-16 its keys and text hold, NUL and lone surrogates included', async () => {
    let seq = 0
    const anyUtf16 = (maxLength: number) => fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength })
    const ours = new Set(['seq', 'boot', 'type', 'ts', 'battery', 'rssi', 'fw', 'pin', 'report', '__proto__', 'constructor', 'prototype'])
    const extra = fc.dictionary(anyUtf16(8).filter((k) => !ours.has(k)), fc.oneof(anyUtf16(16), fc.dictionary(anyUtf16(4), anyUtf16(8), { maxKeys: 2 })), { maxKeys: 4 })
    const fw = anyUtf16(32).filter((t) => t.length > 0)
    await fc.assert(fc.asyncProperty(extra, fw, async (fields, firmware) => {
      const e = gatewayEventOf('fz-b02', { seq: ++seq, boot: 'odd-text', type: 'test', fw: firmware }, Date.now())
      const r = await ingest({ events: [{ ...e, event: { ...e.event, ...fields } }] })
      expect(r.statusCode, r.body).toBe(200)
      expect(r.json().results[0].status, r.body).toBe('stored')
    }), { numRuns: runs(100), examples: [[{ 'k\u0000': 'v\ud800', '\udc00': { '\u0000': '\ud83d' } }, 'fw\udfff']] })
  })
})
