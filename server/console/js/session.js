/**
 * The operator token: typed into the sign-in form, or given in the URL fragment
 * (`#token=...`, for wall displays; a fragment never reaches the server or its logs).
 * Kept for this tab only unless "remember" is ticked.
 */
const KEY = 'sos.token'

export function storedToken () {
  return sessionStorage.getItem(KEY) ?? localStorage.getItem(KEY)
}

/** A token from `#token=...`, removed from the address bar so it is not shown or bookmarked. */
export function takeFragmentToken () {
  const params = new URLSearchParams(location.hash.slice(1))
  const token = params.get('token')
  if (!token) return null
  params.delete('token')
  const rest = params.toString()
  history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''))
  return token
}

export function keepToken (/** @type {string} */ token, remember = false) {
  sessionStorage.setItem(KEY, token)
  if (remember) localStorage.setItem(KEY, token)
}

export function forgetToken () {
  sessionStorage.removeItem(KEY)
  localStorage.removeItem(KEY)
}
