/**
 * `GET /v1/stream` read with fetch (EventSource cannot send the Authorization header), parsed by
 * eventsource-parser. Reconnects by itself with `Last-Event-ID`, backing off up to 15 s, and
 * treats 45 s without a byte as a dead connection (the server writes a comment every 15 s),
 * so a silently broken link shows as disconnected instead of as a quiet ward.
 */
import { createParser } from '/vendor/eventsource-parser/index.js'

const SILENCE_MS = 45_000
const MAX_RETRY_MS = 15_000

/**
 * @param {{
 *   token: () => string | null,
 *   onOpen: () => void,
 *   onEvent: (event: string, data: any) => void,
 *   onStatus: (status: 'connecting' | 'live' | 'down') => void,
 *   onUnauthorized: () => void
 * }} handlers
 * @returns {{ close(): void }}
 */
export function openLiveStream (handlers) {
  /** @type {string | null} */
  let lastEventId = null
  let retryMs = 2000
  let failures = 0
  let closed = false
  /** @type {AbortController | null} */
  let controller = null
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let silence
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let retryTimer

  const armSilenceTimer = () => {
    clearTimeout(silence)
    silence = setTimeout(() => controller?.abort(), SILENCE_MS)
  }

  async function connect () {
    if (closed) return
    controller = new AbortController()
    handlers.onStatus('connecting')
    try {
      /** @type {Record<string, string>} */
      const headers = { authorization: `Bearer ${handlers.token()}`, accept: 'text/event-stream' }
      if (lastEventId !== null) headers['last-event-id'] = lastEventId
      armSilenceTimer()
      const response = await fetch('/v1/stream', { headers, signal: controller.signal, cache: 'no-store' })
      if (response.status === 401) {
        clearTimeout(silence)
        handlers.onUnauthorized()
        return
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`)
      failures = 0
      handlers.onStatus('live')
      handlers.onOpen()
      const parser = createParser({
        onEvent (message) {
          if (message.id !== undefined) lastEventId = message.id
          let data = null
          try { data = JSON.parse(message.data) } catch { data = null }
          handlers.onEvent(message.event ?? 'message', data)
        },
        onRetry (ms) { retryMs = ms }
      })
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        armSilenceTimer()
        parser.feed(value)
      }
    } catch {
      // Network error, abort by the silence timer, or a server restart: all mean "reconnect".
    }
    clearTimeout(silence)
    if (closed) return
    handlers.onStatus('down')
    failures++
    retryTimer = setTimeout(connect, Math.min(retryMs * 2 ** Math.min(failures - 1, 3), MAX_RETRY_MS))
  }

  connect()
  return {
    close () {
      closed = true
      clearTimeout(silence)
      clearTimeout(retryTimer)
      controller?.abort()
    }
  }
}
