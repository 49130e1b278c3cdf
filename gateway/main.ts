/** `npm run gateway`: the gateway alone, forwarding to SERVER_URL with GATEWAY_TOKEN. */
import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { bootFailure, logLevelFromEnv } from '../server/boot-errors.js'
import { gatewayConfigFromEnv } from './config.js'
import { endPastHungDisk, startGateway } from './gateway.js'
import { withoutSecrets } from './server-auth.js'

const log = pino({ level: logLevelFromEnv(), name: 'gateway' })

try {
  const config = gatewayConfigFromEnv()
  const gateway = await startGateway(config, log)
  log.info({ ...gateway.ports, server: withoutSecrets(config.serverUrl), gatewayId: config.gatewayId }, 'gateway listening')
  closeWithGrace({ delay: 15_000, onTimeout: () => endPastHungDisk(log, 'closing took longer than its limit (a disk that hangs?)') }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'closing after an error')
    else log.info({ signal }, 'closing')
    // A stop that failed may have left anything behind, a thread on the disk included.
    const clean = await gateway.stop().then((stopped) => stopped.clean, (err: Error) => { log.error({ err }, 'stop failed'); return false })
    if (!clean) endPastHungDisk(log)
  })
} catch (err) {
  const failure = bootFailure(err)
  if (!failure) throw err
  log.fatal(failure.line)
  process.exit(failure.exitCode)
}
