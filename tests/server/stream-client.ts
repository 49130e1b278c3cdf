/** A live stream client for server suites: `GET /v1/stream` read over a real socket. */
import type { AddressInfo } from 'node:net'
import { TOKENS, type Fixture } from './fixture.js'

/** Reads `GET /v1/stream` over a real socket (as admin, or with `token`); `waitFor` fails after 10 s. */
export async function openStream (fx: Fixture, token = TOKENS.admin) {
  const address = fx.app.server.address() as AddressInfo
  const controller = new AbortController()
  const response = await fetch(`http://127.0.0.1:${address.port}/v1/stream`, {
    headers: { authorization: `Bearer ${token}` }, signal: controller.signal
  })
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let text = ''
  let all = ''
  return {
    /** Everything the stream said so far. */
    said: () => all,
    async waitFor (fragment: string) {
      const deadline = Date.now() + 10_000
      while (!text.includes(fragment)) {
        const left = deadline - Date.now()
        if (left <= 0) throw new Error(`no ${fragment} on the stream within 10 s; got ${text}`)
        const read = await Promise.race([reader.read(), new Promise<null>((resolve) => setTimeout(() => resolve(null), left))])
        if (read === null) continue
        if (read.done) throw new Error(`stream ended without ${fragment}; got ${text}`)
        const chunk = decoder.decode(read.value)
        text += chunk
        all += chunk
      }
      // What was found is consumed: a later wait looks past it.
      text = text.slice(text.indexOf(fragment) + fragment.length)
    },
    /** Resolves once the server ended the stream; fails after `ms`. */
    async ended (ms = 10_000) {
      const deadline = Date.now() + ms
      for (;;) {
        const left = deadline - Date.now()
        if (left <= 0) throw new Error(`the stream did not end within ${ms} ms`)
        const read = await Promise.race([reader.read(), new Promise<null>((resolve) => setTimeout(() => resolve(null), left))])
        if (read?.done) return
      }
    },
    async close () { controller.abort(); await reader.cancel().catch(() => {}) }
  }
}
