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
    /** The problem's `detail` alone, and each invalid field or row: for a list under a form. */
    readonly summary: string = message,
    readonly details: readonly string[] = [],
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
  /** Invalid fields (`path`, `message`) or, for an uploaded file, invalid rows (`line`, `reason`). */
  errors?: { path?: string; message?: string; line?: number; reason?: string }[]
}

function describeError(error: NonNullable<Problem['errors']>[number]): string {
  if (error.line !== undefined) return `line ${error.line}: ${error.reason ?? 'invalid'}`
  return [error.path, error.message].filter(Boolean).join(': ')
}

async function problemOf(response: Response): Promise<ApiError> {
  let problem: Problem = {}
  try {
    problem = (await response.json()) as Problem
  } catch {
    // A proxy's HTML error page: the status says enough.
  }
  const details = (problem.errors ?? []).map(describeError)
  const summary = problem.detail ?? problem.title ?? `HTTP ${response.status}`
  const message = [summary, ...details].filter(Boolean).join(' — ')
  return new ApiError(response.status, message, problem.code, summary, details)
}

export interface RequestOptions {
  /** A JSON body, or a `{ text, type }` body sent as is (a CSV upload). */
  body?: unknown
  /** The rule version a change applies to: sent as `If-Match: "<version>"`. */
  ifMatch?: number
  /** Read the answer as text (a CSV download) rather than JSON. */
  text?: boolean
  auth?: boolean
}

export interface RawBody {
  text: string
  type: string
}

export function isRawBody(body: unknown): body is RawBody {
  return (
    typeof body === 'object' &&
    body !== null &&
    typeof (body as RawBody).text === 'string' &&
    typeof (body as RawBody).type === 'string'
  )
}

/** The `If-Match` value for a rule at `version`: the rule's `ETag`. */
export function entityTag(version: number): string {
  return `"${version}"`
}

export function createApiClient(options: ApiClientOptions) {
  async function request<T>(method: string, path: string, init: RequestOptions = {}): Promise<T> {
    const { body, auth = true } = init
    const headers: Record<string, string> = {
      accept: init.text ? 'text/csv, application/problem+json' : 'application/json',
    }
    const token = options.token()
    if (auth && token) headers.authorization = `Bearer ${token}`
    if (init.ifMatch !== undefined) headers['if-match'] = entityTag(init.ifMatch)
    let payload: string | undefined
    if (isRawBody(body)) {
      headers['content-type'] = body.type
      payload = body.text
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json'
      payload = JSON.stringify(body)
    }
    const response = await fetch(path, { method, headers, body: payload })
    if (response.status === 401 && auth) {
      options.onUnauthorized('Your session has expired. Sign in again.')
      throw new ApiError(401, 'signed out')
    }
    if (!response.ok) throw await problemOf(response)
    if (response.status === 204) return undefined as T
    return (init.text ? await response.text() : await response.json()) as T
  }
  return {
    get: <T>(path: string, query?: Query) => request<T>('GET', withQuery(path, query)),
    getText: (path: string) => request<string>('GET', path, { text: true }),
    post: <T>(path: string, body?: unknown) => request<T>('POST', path, { body }),
    patch: <T>(path: string, body: unknown, ifMatch?: number) => request<T>('PATCH', path, { body, ifMatch }),
    put: <T>(path: string, body: RawBody, ifMatch?: number) => request<T>('PUT', path, { body, ifMatch }),
    delete: (path: string, ifMatch?: number) => request<void>('DELETE', path, { ifMatch }),
    /** Unauthenticated POST (sign-in, sign-up): a 401 there is a wrong password, not an expiry. */
    postPublic: <T>(path: string, body: unknown) => request<T>('POST', path, { body, auth: false }),
  }
}

export type ApiClient = ReturnType<typeof createApiClient>
