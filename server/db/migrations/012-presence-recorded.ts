import type { Migration } from '../migrations.js'

/**
 * Version 12: when the server took a device's last presence change, on its own clock
 * (ingest/presence.ts). A device that moved from gateway A to gateway B was reported online by
 * B, then offline by A (its old connection's will, after the grace), before B forwarded any of
 * its events: its newest event had come through A, which was enough to take A's word, and the
 * device_offline alert opened then was never resolved (B never says online again, and its
 * heartbeats resolve no gateway's report). Now heard through A counts only when heard through
 * A after B's report was taken.
 */
export const presenceRecorded: Migration = {
  version: 12,
  name: 'when the server took the last presence change',
  sql: `
ALTER TABLE devices ADD COLUMN presence_recorded_at timestamptz;
`
}
