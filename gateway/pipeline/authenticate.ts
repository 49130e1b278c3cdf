/**
 * Step 1, at CONNECT: the client id names a device (or `{device}:{suffix}`), the username is
 * that device, the password its secret — or, on the TLS listener with a client CA configured,
 * a verified client certificate whose CN is the device id. Everything else is refused at
 * CONNACK, before aedes creates a session, a subscription or a retained message for the client.
 */
import type { TLSSocket } from 'node:tls'
import type { AuthenticateError, Client } from 'aedes'
import type { Logger } from 'pino'
import { deviceIdOfClientId } from '../../protocol/index.js'
import type { CheckResult, CredentialCache } from '../credentials.js'
import type { GatewayMetrics } from '../metrics.js'
import type { ExtraConnections } from '../extra-connections.js'
import { setSession } from '../sessions.js'
import { LogBudget } from '../../server/log-budget.js'

// MQTT 3.1.1 CONNACK return codes.
const IDENTIFIER_REJECTED = 2
const SERVER_UNAVAILABLE = 3
const BAD_USERNAME_OR_PASSWORD = 4
const NOT_AUTHORIZED = 5

function refusal (returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError
}

/** The CN of a client certificate the TLS layer verified against our CA, if any. */
export function verifiedCertificateCn (client: Client): string | undefined {
  const conn = client.conn as Partial<TLSSocket> | undefined
  if (!conn || typeof conn.getPeerCertificate !== 'function' || conn.authorized !== true) return undefined
  const cn = conn.getPeerCertificate().subject?.CN
  return typeof cn === 'string' ? cn : undefined
}

/**
 * `atCapacity` says the gateway holds its maximum of connections: the client hears CONNACK
 * "server unavailable" (and retries later, perhaps on another gateway) instead of a bare close.
 * It is asked whether the client is an extra connection of its device (`{id}:{suffix}`), which
 * is refused a little earlier (extra-connections.ts). `extra` caps those per device. `shutDown`
 * says the client id is shut down for babbling (babbling-connections.ts), and refused until it is not.
 */
export function createAuthenticate (credentials: CredentialCache, metrics: GatewayMetrics, log: Logger, atCapacity: (extra: boolean) => boolean = () => false, extra?: ExtraConnections, shutDown: (clientId: string) => boolean = () => false) {
  // A few lines per reason every 10 s: a password-guessing flood or a fleet reconnecting into a
  // full gateway is counted in full (metrics), not logged line by line.
  const refusalLines = new LogBudget(5, 10_000, (reason, lines) => log.info({ reason, notLogged: lines }, 'more connections refused, not logged one by one'))
  const refuse = (done: (err: AuthenticateError, ok: null) => void, code: number, reason: string, client: Client) => {
    metrics.connectionsRefused.inc({ reason })
    if (refusalLines.allows(reason)) {
      const remote = client.conn && 'remoteAddress' in client.conn ? client.conn.remoteAddress : undefined
      log.info({ clientId: client.id, reason, remote }, 'connection refused')
    }
    done(refusal(code, reason), null)
  }

  return function authenticate (
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (error: AuthenticateError | null, success: boolean | null) => void
  ): void {
    const deviceId = deviceIdOfClientId(client.id ?? '')
    if (atCapacity(deviceId !== null && client.id !== deviceId)) return refuse(done, SERVER_UNAVAILABLE, 'max_connections', client)
    if (!deviceId) return refuse(done, IDENTIFIER_REJECTED, 'client_id', client)
    // A second connection ({device}:{suffix}: a service tool, a test subscriber) gets a clean
    // session: the broker keeps persistent sessions in memory, with every message for the device
    // copied into each one's queue, so one device's secret could otherwise pile up sessions
    // under made-up suffixes without limit.
    if (client.id !== deviceId && client.clean === false) return refuse(done, IDENTIFIER_REJECTED, 'persistent_second_session', client)
    const cn = verifiedCertificateCn(client)
    const byCertificate = cn !== undefined && (!password || password.length === 0)
    if (byCertificate) {
      if (cn !== deviceId) return refuse(done, NOT_AUTHORIZED, 'certificate_cn_mismatch', client)
      if (username && username !== deviceId) return refuse(done, IDENTIFIER_REJECTED, 'client_id_mismatch', client)
    } else {
      if (!username || !password || password.length === 0) return refuse(done, BAD_USERNAME_OR_PASSWORD, 'anonymous', client)
      if (username !== deviceId) return refuse(done, IDENTIFIER_REJECTED, 'client_id_mismatch', client)
    }
    const checking: Promise<CheckResult> = byCertificate ? credentials.lookup(deviceId) : credentials.check(deviceId, password!.toString('utf8'))
    checking.then((result) => {
      if (result.ok) {
        // Counted once the secret checked out: a wrong password is refused as such, and only
        // the device's own connections take its slots. Not authorized: the secret is right, but
        // this device may open no more connections until one of its others closes.
        // Shut down for babbling (babbling-connections.ts), told only to who holds the secret: "server
        // unavailable", so it comes back later, not never.
        if (shutDown(client.id)) return refuse(done, SERVER_UNAVAILABLE, 'babbling', client)
        if (client.id !== deviceId && extra !== undefined && !extra.take(deviceId, client)) return refuse(done, NOT_AUTHORIZED, 'extra_connections', client)
        const { kind, zone, silent, secretHash } = result.device
        setSession(client, { deviceId, kind, zone, silent, ...(byCertificate ? {} : { secretHash }) })
        return done(null, true)
      }
      if (result.reason === 'unavailable') return refuse(done, SERVER_UNAVAILABLE, result.reason, client)
      refuse(done, result.reason === 'revoked' ? NOT_AUTHORIZED : BAD_USERNAME_OR_PASSWORD, result.reason, client)
    }, (err: Error) => {
      log.error({ err, deviceId }, 'credential check failed')
      refuse(done, SERVER_UNAVAILABLE, 'error', client)
    })
  }
}
