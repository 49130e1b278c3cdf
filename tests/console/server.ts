/**
 * The real server alone, on embedded storage in a directory of its own, for the console tests
 * that drive its API themselves (no gateway needed).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer } from '../../server/server.js'
import { serverConfigFromEnv } from '../../server/config.js'

export async function startConsoleServer (name: string, tokens: { admin: string, gateway: string }, env: NodeJS.ProcessEnv = {}): Promise<{ url: string, dropConnections(): void, close(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), `sos-console-${name}-`))
  const server = await startServer({ ...serverConfigFromEnv(env), httpPort: 0, httpHost: '127.0.0.1', dataDir, adminToken: tokens.admin, gatewayToken: tokens.gateway })
  return {
    url: server.url,
    /** A blip: every open connection (the consoles' live streams) is cut; the server stays up. */
    dropConnections: () => server.app.server.closeAllConnections(),
    async close () {
      await server.close()
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
}
