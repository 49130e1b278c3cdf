/**
 * The gateway assembled: durable state, credential cache, broker with its pipeline,
 * forwarder (uplink) and downlink relay. `start` returns a handle whose `stop` closes
 * everything in order and flushes what it can.
 */
import type { Logger } from 'pino'
import type { Aedes } from 'aedes'
import type { Ack, DownlinkMessage } from '../protocol/index.js'
import type { GatewayConfig } from './config.js'
import { openStateDb } from './state-db.js'
import { Outbox } from './outbox.js'
import { DeadLetters } from './dead-letters.js'
import { CredentialCache } from './credentials.js'
import { ServerClient } from './server-client.js'
import { createGatewayMetrics, type GatewayMetrics } from './metrics.js'
import { createAuthenticate } from './pipeline/authenticate.js'
import { createAuthorizePublish } from './pipeline/publish-pipeline.js'
import { authorize } from './pipeline/authorize.js'
import { validate } from './pipeline/validate.js'
import { createStamp } from './pipeline/stamp.js'
import { createPersist } from './pipeline/persist.js'
import { createBroker, listen, type Listeners } from './broker.js'
import { ConnectedDevices } from './sessions.js'
import { Forwarder } from './forwarder.js'
import { DownlinkRelay } from './downlink.js'

export interface RunningGateway {
  ports: Listeners
  broker: Aedes
  metrics: GatewayMetrics
  outbox: Outbox
  deadLetters: DeadLetters
  stop(): Promise<void>
}

export async function startGateway (config: GatewayConfig, log: Logger): Promise<RunningGateway> {
  const db = openStateDb(config.dataDir)
  const metrics = createGatewayMetrics()
  const server = new ServerClient(config.serverUrl, config.gatewayToken)
  const outbox = new Outbox(db)
  const deadLetters = new DeadLetters(db)

  let broker: Aedes | undefined
  const publish = (topic: string, payload: unknown, retain = false) => {
    broker?.publish({ cmd: 'publish', topic, payload: Buffer.from(JSON.stringify(payload)), qos: 1, retain, dup: false }, (err) => {
      if (err) log.warn({ err, topic }, 'downlink publish failed')
    })
  }
  const sendToDevice = (topic: string, ack: Ack) => publish(topic, ack)

  const connected = new ConnectedDevices()
  const credentials = new CredentialCache(db, server, config.credentialRefreshMs, log, (revokedIds) => {
    // A revoked device loses its live connections too, not only its next CONNECT.
    for (const id of revokedIds) for (const client of connected.clientsOf(id)) client.close()
  })
  await credentials.start()

  broker = await createBroker(config.gatewayId, {
    authenticate: createAuthenticate(credentials, metrics, log),
    authorizePublish: createAuthorizePublish({
      steps: [authorize, validate, createStamp(config.gatewayId), createPersist(outbox)],
      deadLetters,
      metrics,
      log,
      sendToDevice
    })
  }, log)
  broker.on('clientReady', (client) => connected.add(client))
  broker.on('clientDisconnect', (client) => connected.remove(client))
  const listeners = await listen(broker, config)

  const forwarder = new Forwarder(outbox, server, sendToDevice, metrics, log, config.forwardBatchSize)
  const downlink = new DownlinkRelay(db, server, (m: DownlinkMessage) => publish(m.topic, m.payload, m.retain), metrics, log)
  forwarder.start()
  downlink.start()

  const aedes = broker
  return {
    ports: listeners.ports,
    broker: aedes,
    metrics,
    outbox,
    deadLetters,
    async stop () {
      const listenersClosed = listeners.close()
      await forwarder.stop()
      await downlink.stop()
      credentials.stop()
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
      await listenersClosed
      db.close()
    }
  }
}
