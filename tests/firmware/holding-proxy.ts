/**
 * A pass-through HTTP proxy between the gateway and the server that can hold back the server's
 * answer to one chosen request: "the ingest answer is on a slow link", while the request itself
 * has been served (the events are stored, the operator sees the alert).
 */
import http from 'node:http'

export interface HeldAnswer {
  /** Resolves once the server has answered the chosen request and the answer is being held. */
  held: Promise<void>
  release(): void
}

export interface HoldingProxy {
  url: string
  /** Holds the answer to the next request for which `match` is true. */
  holdNext(match: (method: string, path: string, body: string) => boolean): HeldAnswer
  close(): Promise<void>
}

export async function startHoldingProxy (target: string): Promise<HoldingProxy> {
  const upstreamUrl = new URL(target)
  let armed: { match: (method: string, path: string, body: string) => boolean, onHeld: () => void, gate: Promise<void> } | undefined

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const hold = armed?.match(req.method!, req.url!, body.toString('utf8')) ? armed : undefined
      if (hold) armed = undefined
      const upstream = http.request({ host: upstreamUrl.hostname, port: upstreamUrl.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstreamUrl.host } }, (up) => {
        const out: Buffer[] = []
        up.on('data', (c: Buffer) => out.push(c))
        up.on('end', async () => {
          if (hold) { hold.onHeld(); await hold.gate }
          const answer = Buffer.concat(out)
          const headers = { ...up.headers }
          delete headers['transfer-encoding']
          res.writeHead(up.statusCode!, { ...headers, 'content-length': answer.length })
          res.end(answer)
        })
      })
      upstream.on('error', (err) => res.destroy(err))
      upstream.end(body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }

  return {
    url: `http://127.0.0.1:${port}`,
    holdNext (match) {
      let release!: () => void
      const gate = new Promise<void>((resolve) => { release = resolve })
      let onHeld!: () => void
      const held = new Promise<void>((resolve) => { onHeld = resolve })
      armed = { match, onHeld, gate }
      return { held, release }
    },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}
