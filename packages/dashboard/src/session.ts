// The access token lives in sessionStorage: it survives a reload but not the tab, and is never
// written to a cookie (so no CSRF surface) nor to localStorage (so it does not outlive the session).
const KEY = 'intellisite.session'

export interface Session {
  token: string
  username: string
  /** Epoch ms after which the API will answer 401. */
  expiresAt: number
}

export function loadSession(storage: Storage = sessionStorage): Session | null {
  try {
    const parsed = JSON.parse(storage.getItem(KEY) ?? 'null') as Session | null
    if (!parsed || typeof parsed.token !== 'string' || typeof parsed.expiresAt !== 'number') return null
    return parsed.expiresAt > Date.now() ? parsed : null
  } catch {
    return null
  }
}

export function saveSession(session: Session, storage: Storage = sessionStorage): void {
  storage.setItem(KEY, JSON.stringify(session))
}

export function clearSession(storage: Storage = sessionStorage): void {
  storage.removeItem(KEY)
}
