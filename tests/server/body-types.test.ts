/**
 * A request body is taken as sent. Before: bodies were coerced like query strings, so
 * `{"kind":"counter","silent":null}` provisioned a counter alarm that sounds (silent: false,
 * during a hold-up), `"lat": null` put a device at 0,0, `"lat": true` at 1, `"lat": [5]` at 5;
 * and a resolve with a misspelt `notes` answered 200 and dropped the note from the audit trail.
 * Now each is a 400 that names the field, and nothing is changed. Query strings and path
 * parameters are text, and are still read as the types their schemas say.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseBackends } from '../helpers/postgres.js'
import { buildFixture, gatewayEvent, type Fixture } from './fixture.js'

const device = { kind: 'counter', name: 'Tiệm vàng Kim Thành', zone: 'zone-a', lat: 10.78, lon: 106.7 }

describe('request bodies taken as sent', () => {
  let fx: Fixture
  let dispose: () => Promise<void>
  let operator: string

  beforeAll(async () => {
    const opened = await databaseBackends[0]!.open()
    dispose = opened.dispose
    fx = await buildFixture(opened.db)
    operator = await fx.tokenFor('operator')
  }, 180_000)

  afterAll(async () => {
    await fx?.app.close()
    await dispose?.()
  })

  it('refuses a device whose fields have the wrong types, and provisions none of them', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ silent: null }, 'body/silent must be boolean'],
      [{ silent: 'false' }, 'body/silent must be boolean'],
      [{ silent: 0 }, 'body/silent must be boolean'],
      [{ lat: null }, 'body/lat must be number'],
      [{ lat: true }, 'body/lat must be number'],
      [{ lat: [5] }, 'body/lat must be number'],
      [{ lat: '10.78' }, 'body/lat must be number'],
      [{ name: 12 }, 'body/name must be string'],
      [{ kind: ['counter'] }, 'body/kind must be one of: button, kiosk, counter'],
      [{ pin: 1234 }, 'body/pin must be string']
    ]
    for (const [i, [change, message]] of cases.entries()) {
      const id = `ctr-typed-${i}`
      const answer = await fx.call('POST', '/v1/devices', { id, ...device, ...change })
      expect(answer, JSON.stringify(change)).toEqual({ status: 400, body: { statusCode: 400, code: 'VALIDATION', message } })
      expect((await fx.call('GET', `/v1/devices/${id}`)).status).toBe(404)
    }
    // As sent, it is provisioned as sent: a counter is silent unless told otherwise.
    const made = await fx.call('POST', '/v1/devices', { id: 'ctr-typed-ok', ...device })
    expect(made.status).toBe(201)
    expect(made.body).toMatchObject({ kind: 'counter', silent: true, lat: 10.78 })
  })

  it('refuses a property an operator action does not take, and records nothing', async () => {
    await fx.provision('btn-typed')
    const [press] = await fx.ingest({ events: [gatewayEvent('btn-typed', { seq: 1, type: 'press' }, Date.now())] })
    const alertId = press!.alertId!
    const refused = async (action: string, body: unknown, message: string) =>
      expect(await fx.call('POST', `/v1/alerts/${alertId}/${action}`, body, operator), `${action} ${JSON.stringify(body)}`)
        .toEqual({ status: 400, body: { statusCode: 400, code: 'VALIDATION', message } })
    await refused('resolve', { outcome: 'false_alarm', notes: 'kids playing' }, 'body must NOT have additional properties: notes')
    await refused('acknowledge', { note: 'on it', by: 'desk 2' }, 'body must NOT have additional properties: by')
    await refused('dispatch', { notes: 'car 12' }, 'body must NOT have additional properties: notes')
    await refused('resolve', { outcome: 'real', note: 42 }, 'body/note must be string')
    const alert = (await fx.call('GET', `/v1/alerts/${alertId}`, undefined, operator)).body
    expect(alert).toMatchObject({ state: 'open', outcome: null })
    expect(alert.transitions).toHaveLength(1)
    // Spelt right, the note is in the trail.
    expect((await fx.call('POST', `/v1/alerts/${alertId}/resolve`, { outcome: 'false_alarm', note: 'kids playing' }, operator)).status).toBe(200)
    expect((await fx.call('GET', `/v1/alerts/${alertId}`, undefined, operator)).body.transitions.at(-1)).toMatchObject({ to: 'resolved', note: 'kids playing' })
  })

  it('still reads query strings and path parameters as their types', async () => {
    for (let i = 0; i < 3; i++) await fx.provision(`btn-page-${i}`)
    const { status, body } = await fx.call('GET', '/v1/devices?limit=2&zone=zone-a')
    expect(status).toBe(200)
    expect(body).toHaveLength(2)
    expect((await fx.call('GET', '/v1/alerts?limit=two')).body).toMatchObject({ statusCode: 400, message: 'querystring/limit must be integer' })
  })
})
