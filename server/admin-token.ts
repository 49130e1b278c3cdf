/**
 * The first admin token: ADMIN_TOKEN when given; otherwise generated on first start, kept in
 * `{dataDir}/admin-token` (readable by the owner only) and shown once.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { newToken } from './auth/tokens.js'

export interface AdminToken {
  token: string
  /** True when made just now: the caller prints it, this one time. */
  generated: boolean
  file?: string
}

export function resolveAdminToken (dataDir: string, fromEnv?: string): AdminToken {
  if (fromEnv) return { token: fromEnv, generated: false }
  const file = join(dataDir, 'admin-token')
  if (existsSync(file)) return { token: readFileSync(file, 'utf8').trim(), generated: false, file }
  mkdirSync(dataDir, { recursive: true })
  const token = newToken()
  writeFileSync(file, `${token}\n`, { mode: 0o600 })
  return { token, generated: true, file }
}
