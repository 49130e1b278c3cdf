/** The gateway's HTTP client for the server's gateway API (bearer-authenticated). */
import type { DeviceCredential, DownlinkMessage, IngestBatch, IngestResult } from '../protocol/index.js'

export class ServerError extends Error {
  constructor (readonly status: number, message: string) {
    super(message)
  }
}

export class ServerClient {
  constructor (private readonly baseUrl: string, private readonly token: string) {}

  async ingest (batch: IngestBatch, signal?: AbortSignal): Promise<IngestResult[]> {
    const body = await this.request<{ results: IngestResult[] }>('POST', '/v1/ingest', batch, signal, 30_000)
    return body.results
  }

  async credentials (filter: { id?: string, changedSince?: string } = {}, signal?: AbortSignal): Promise<{ asOf: string, devices: DeviceCredential[] }> {
    const query = new URLSearchParams()
    if (filter.id) query.set('id', filter.id)
    if (filter.changedSince) query.set('changedSince', filter.changedSince)
    return this.request('GET', `/v1/gateway/devices?${query}`, undefined, signal, 5_000)
  }

  async downlink (after: number | undefined, waitMs: number, signal?: AbortSignal): Promise<{ head: number, messages: DownlinkMessage[] }> {
    const query = new URLSearchParams({ wait: String(waitMs) })
    if (after !== undefined) query.set('after', String(after))
    return this.request('GET', `/v1/gateway/downlink?${query}`, undefined, signal, waitMs + 10_000)
  }

  private async request<T> (method: string, path: string, body: unknown, signal: AbortSignal | undefined, timeoutMs: number): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs)
    const response = await fetch(this.baseUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' })
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout
    })
    const text = await response.text()
    if (!response.ok) throw new ServerError(response.status, `${method} ${path} → ${response.status}: ${text.slice(0, 300)}`)
    return JSON.parse(text) as T
  }
}
