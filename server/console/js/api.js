/**
 * The HTTP API with the signed-in token. Errors become `ApiError` with the server's
 * `{statusCode, code, message}`; a 401 signs the console out (the token was revoked).
 */
export class ApiError extends Error {
  constructor (/** @type {number} */ status, /** @type {string} */ code, /** @type {string} */ message) {
    super(message)
    this.status = status
    this.code = code
  }
}

/**
 * @param {() => string | null} token
 * @param {() => void} onUnauthorized
 */
export function createApi (token, onUnauthorized) {
  /** @returns {Promise<any>} */
  return async function api (/** @type {string} */ method, /** @type {string} */ path, /** @type {unknown} */ body = undefined) {
    let response
    try {
      response = await fetch(path, {
        method,
        cache: 'no-store',
        headers: {
          authorization: `Bearer ${token()}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' })
        },
        body: body === undefined ? undefined : JSON.stringify(body)
      })
    } catch (err) {
      throw new ApiError(0, 'NETWORK', String(err))
    }
    const text = await response.text()
    let data = null
    try { data = text ? JSON.parse(text) : null } catch { data = null }
    if (response.status === 401) onUnauthorized()
    if (!response.ok) {
      throw new ApiError(response.status, data?.code ?? 'HTTP', data?.message ?? `HTTP ${response.status}`)
    }
    return data
  }
}

/** Checks a token before keeping it: any operator/analyst read will do. */
export async function checkToken (/** @type {string} */ token) {
  const response = await fetch('/v1/devices?limit=1', { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' })
  return response.status
}
