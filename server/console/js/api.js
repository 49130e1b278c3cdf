/**
 * The HTTP API with the signed-in token. Errors become `ApiError` with the server's
 * `{statusCode, code, message}`; a 401 signs the console out (the token was revoked).
 * Every request has a time limit: one that never answers (a query waiting on a lock, a
 * half-open socket) must fail, to be retried, rather than hold back what waits for it.
 */
export class ApiError extends Error {
  constructor (/** @type {number} */ status, /** @type {string} */ code, /** @type {string} */ message) {
    super(message)
    this.status = status
    this.code = code
  }
}

/** Long enough for a page of a thousand devices on a slow link; short enough to retry soon. */
export const REQUEST_TIMEOUT_MS = 15_000

/**
 * @param {() => string | null} token
 * @param {() => void} onUnauthorized
 */
export function createApi (token, onUnauthorized) {
  /** @returns {Promise<any>} */
  return async function api (/** @type {string} */ method, /** @type {string} */ path, /** @type {unknown} */ body = undefined) {
    const { response, text } = await fetchWithTimeout(path, {
      method,
      cache: 'no-store',
      headers: {
        authorization: `Bearer ${token()}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' })
      },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    let data = null
    try { data = text ? JSON.parse(text) : null } catch { data = null }
    if (response.status === 401) onUnauthorized()
    if (!response.ok) {
      throw new ApiError(response.status, data?.code ?? 'HTTP', data?.message ?? `HTTP ${response.status}`)
    }
    return data
  }
}

/**
 * `fetch` and its body, given up after REQUEST_TIMEOUT_MS (status 0, code TIMEOUT): the body
 * too, as a server can send its headers and then stall.
 * @param {string} path
 * @param {RequestInit} init
 */
async function fetchWithTimeout (path, init) {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS)
  try {
    const response = await fetch(path, { ...init, signal: controller.signal })
    return { response, text: await response.text() }
  } catch (err) {
    if (controller.signal.aborted) throw new ApiError(0, 'TIMEOUT', `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)
    throw new ApiError(0, 'NETWORK', String(err))
  } finally {
    clearTimeout(timer)
  }
}

/** Checks a token before keeping it: any operator/analyst read will do. Status 0: no answer. */
export async function checkToken (/** @type {string} */ token) {
  try {
    const { response } = await fetchWithTimeout('/v1/devices?limit=1', { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' })
    return response.status
  } catch {
    return 0
  }
}
