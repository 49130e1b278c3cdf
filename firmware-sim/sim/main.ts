/** `npm run sim -- …`: a simulated fleet against a running gateway (see options.ts for flags). */
import { parseSimOptions, UsageError, USAGE } from './options.js'
import { ProvisionError } from './provision.js'
import { runSim } from './run.js'

const tty = process.stdout.isTTY === true
let lastStatus = 0
const out = {
  log (line: string) {
    process.stdout.write(tty ? `\r\x1b[K${line}\n` : `${line}\n`)
  },
  status (line: string) {
    if (tty) return void process.stdout.write(`\r\x1b[K${line}`)
    // Not a terminal (CI, a log file): a line every five seconds is enough.
    if (Date.now() - lastStatus >= 5000) { lastStatus = Date.now(); process.stdout.write(`${line}\n`) }
  }
}

const stop = new AbortController()
process.once('SIGINT', () => stop.abort())
process.once('SIGTERM', () => stop.abort())

try {
  const options = parseSimOptions(process.argv.slice(2))
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`)
  } else {
    process.exitCode = await runSim(options, out, stop.signal)
  }
} catch (err) {
  if (err instanceof UsageError) {
    process.stderr.write(`${err.message}\n${USAGE}\n`)
    process.exitCode = 2
  } else if (err instanceof ProvisionError) {
    process.stderr.write(`${err.message}\n`)
    process.exitCode = 1
  } else {
    throw err
  }
}
