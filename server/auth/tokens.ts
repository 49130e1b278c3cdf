/**
 * API bearer tokens. Tokens are long random strings, so a fast SHA-256 is enough to store them
 * (a slow hash guards guessable secrets, not 256-bit random ones).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { Queryable } from '../db/database.js'
import { notFound } from '../plugins/errors.js'

export const ROLES = ['admin', 'operator', 'analyst', 'gateway'] as const
export type Role = typeof ROLES[number]

export interface Principal {
  role: Role
  /** Who acts, as written into the audit trail. */
  name: string
  tokenId: string
}

export function newToken (): string {
  return `sos_${randomBytes(32).toString('base64url')}`
}

export function hashToken (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

/** Tokens given in configuration (ADMIN_TOKEN, GATEWAY_TOKEN) live beside those in the database. */
export interface StaticToken {
  token: string
  role: Role
  name: string
}

export class TokenRegistry {
  private readonly staticTokens = new Map<string, Principal>()

  constructor (private readonly db: Queryable, staticTokens: StaticToken[]) {
    for (const t of staticTokens) {
      this.staticTokens.set(hashToken(t.token), { role: t.role, name: t.name, tokenId: t.name })
    }
  }

  async resolve (token: string): Promise<Principal | null> {
    const hash = hashToken(token)
    const fixed = this.staticTokens.get(hash)
    if (fixed) return fixed
    const rows = await this.db.query<{ id: string, role: Role, name: string }>(
      'SELECT id, role, name FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL', [hash])
    const row = rows[0]
    return row ? { role: row.role, name: row.name, tokenId: row.id } : null
  }

  async issue (role: Role, name: string): Promise<{ id: string, token: string }> {
    const id = randomUUID()
    const token = newToken()
    await this.db.query('INSERT INTO api_tokens (id, role, name, token_hash) VALUES ($1, $2, $3, $4)',
      [id, role, name, hashToken(token)])
    return { id, token }
  }

  /** The tokens issued (never the tokens themselves), newest first: an admin finds a leaked one's id here. */
  async list (): Promise<Array<{ id: string, role: Role, name: string, createdAt: string, revokedAt: string | null }>> {
    const rows = await this.db.query<{ id: string, role: Role, name: string, created_at: Date, revoked_at: Date | null }>(
      'SELECT id, role, name, created_at, revoked_at FROM api_tokens ORDER BY created_at DESC, id LIMIT 1000')
    return rows.map((r) => ({ id: r.id, role: r.role, name: r.name, createdAt: r.created_at.toISOString(), revokedAt: r.revoked_at?.toISOString() ?? null }))
  }

  /**
   * Revokes an issued token. Idempotent, as device revocation is: a token revoked already keeps
   * its first revocation's time. Only an id never issued is not found (tokens from configuration,
   * ADMIN_TOKEN and GATEWAY_TOKEN, have no id here: they end by changing the configuration).
   */
  async revoke (id: string): Promise<{ alreadyRevoked: boolean }> {
    // One statement: a revocation racing this one is seen as "already", never as "not found".
    const rows = await this.db.query<{ newly: boolean }>(
      `WITH revoked AS (
         UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id
       )
       SELECT EXISTS (SELECT 1 FROM revoked) AS newly FROM api_tokens WHERE id = $1`, [id])
    if (!rows[0]) throw notFound(`token ${id}`)
    return { alreadyRevoked: !rows[0].newly }
  }
}
