import type { Migration } from '../migrations.js'

/**
 * Version 15: dead letters are deleted once older than DEAD_LETTER_RETENTION_DAYS
 * (db/dead-letter-retention.ts). They were kept forever, and one device spraying garbage wrote
 * thousands a second. Their age is when the server stored them (its own clock): `received_at` is
 * their gateway's, which may be years off either way. This index finds the old ones without
 * reading the table.
 */
export const deadLettersStored: Migration = {
  version: 15,
  name: 'dead letters found by when they were stored, for their retention',
  sql: `
CREATE INDEX dead_letters_stored ON dead_letters (stored_at);
`
}
