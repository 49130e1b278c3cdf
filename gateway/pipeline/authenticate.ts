/**
 * Step 1, at CONNECT: the client id names a device (or `{device}:{suffix}`), the username is
 * that device, the password its secret. Everything else is refused at CONNACK, before aedes
 * creates a session, a subscription or a retained message for the client.
 */
import type { AuthenticateError, Client } from 'aedes'
import type { Logger } from 'pino'
import { deviceIdOfClientId } from '../../protocol/index.js'
import type { CredentialCache } from '../credentials.js'
import type { GatewayMetrics } from '../metrics.js'
import { setSession } from '../sessions.js'

// MQTT 3.1.1 CONNACK return codes.
const IDENTIFIER_REJECTED = 2
const SERVER_UNAVAILABLE = 3
const BAD_USERNAME_OR_PASSWORD = 4

function refusal (returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError
}

export function createAuthenticate (credentials: CredentialCache, metrics: GatewayMetrics, log: Logger) {
  const refuse = (done: (err: AuthenticateError, ok: null) => void, code: number, reason: string, client: Client) => {
    metrics.connectionsRefused.inc({ reason })
    log.info({ clientId: client.id, reason, remote: client.conn && 'remoteAddress' in client.conn ? client.conn.remoteAddress : undefined }, 'connection refused')
    done(refusal(code, reason), null)
  }

  return function authenticate (
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (error: AuthenticateError | null, success: boolean | null) => void
  ): void {
    const deviceId = deviceIdOfClientId(client.id ?? '')
    if (!deviceId) return refuse(done, IDENTIFIER_REJECTED, 'client_id', client)
    if (!username || !password || password.length === 0) return refuse(done, BAD_USERNAME_OR_PASSWORD, 'anonymous', client)
    if (username !== deviceId) return refuse(done, IDENTIFIER_REJECTED, 'client_id_mismatch', client)
    credentials.check(deviceId, password.toString('utf8')).then((result) => {
      if (result.ok) {
        const { kind, zone, silent } = result.device
        setSession(client, { deviceId, kind, zone, silent })
        return done(null, true)
      }
      if (result.reason === 'unavailable') return refuse(done, SERVER_UNAVAILABLE, result.reason, client)
      refuse(done, BAD_USERNAME_OR_PASSWORD, result.reason, client)
    }, (err: Error) => {
      log.error({ err, deviceId }, 'credential check failed')
      refuse(done, SERVER_UNAVAILABLE, 'error', client)
    })
  }
}
