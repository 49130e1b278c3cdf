/** Publishes the gateways refused, kept with their reason; a resent batch stores each once. */
import type { Queryable } from '../db/database.js'
import type { DeadLetter } from '../../protocol/index.js'

export async function storeDeadLetters (tx: Queryable, letters: DeadLetter[]): Promise<number> {
  if (letters.length === 0) return 0
  const rows = await tx.query(`
    INSERT INTO dead_letters (gateway_id, device_id, topic, reason, payload, received_at)
    SELECT gateway_id, device_id, topic, reason, payload, to_timestamp(received_ms / 1000.0)
    FROM jsonb_to_recordset($1::jsonb) AS t(gateway_id text, device_id text, topic text, reason text, payload text, received_ms float8)
    ON CONFLICT (gateway_id, received_at, topic, md5(payload)) DO NOTHING
    RETURNING id`,
  [JSON.stringify(letters.map((l) => ({
    gateway_id: l.gatewayId, device_id: l.deviceId ?? null, topic: l.topic, reason: l.reason, payload: l.payload, received_ms: l.receivedAt
  })))])
  return rows.length
}
