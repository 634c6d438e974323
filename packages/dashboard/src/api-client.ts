// fetch against the API (same origin) that turns any 401 into one sign-out, and problem+json
// answers into errors that carry the API's own explanation.

/**
 * A problem the API answered with, as the browser receives it. Not an `IntellisiteError`: the
 * dashboard is a client of the HTTP API and depends on no package of the services, so its `code` is
 * whatever the server sent (an older or newer server may send codes this build does not know).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
  ) {
    super(message)
  }
}

export interface ApiClientOptions {
  token(): string | null
  /** Called once per 401; the caller signs out with this message. */
  onUnauthorized(message: string): void
}

export type Query = Record<string, string | number | undefined | null>

export function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(name, String(value))
  }
  const search = params.toString()
  return search ? `${path}?${search}` : path
}

interface Problem {
  title?: string
  detail?: string
  code?: string
  errors?: { path?: string; message?: string }[]
}

async function problemOf(response: Response): Promise<ApiError> {
  let problem: Problem = {}
  try {
    problem = (await response.json()) as Problem
  } catch {
    // A proxy's HTML error page: the status says enough.
  }
  const details = (problem.errors ?? []).map((e) => [e.path, e.message].filter(Boolean).join(': '))
  const message =
    [problem.detail ?? problem.title, ...details].filter(Boolean).join(' — ') || `HTTP ${response.status}`
  return new ApiError(response.status, message, problem.code)
}

export function createApiClient(options: ApiClientOptions) {
  async function request<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' }
    const token = options.token()
    if (auth && token) headers.authorization = `Bearer ${token}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    if (response.status === 401 && auth) {
      options.onUnauthorized('Your session has expired. Sign in again.')
      throw new ApiError(401, 'signed out')
    }
    if (!response.ok) throw await problemOf(response)
    return (await response.json()) as T
  }
  return {
    get: <T>(path: string, query?: Query) => request<T>('GET', withQuery(path, query)),
    /** Unauthenticated POST (sign-in, sign-up): a 401 there is a wrong password, not an expiry. */
    postPublic: <T>(path: string, body: unknown) => request<T>('POST', path, body, false),
  }
}

export type ApiClient = ReturnType<typeof createApiClient>
