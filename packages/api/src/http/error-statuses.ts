import type { ErrorCode } from '@intellisite/common'

/**
 * The one place an error code becomes an HTTP status, for every code of the services: repositories
 * and stores raise codes, never statuses. `internal` marks a code that must never reach a client as
 * itself: the route that can meet it translates it (e.g. a refused webhook target becomes
 * `WEBHOOK_URL_REFUSED`), and one that escapes anyway is a 500 that says nothing. A 5xx code is
 * answered as `SERVICE_UNAVAILABLE` (503) or `INTERNAL_ERROR` with no detail: internals stay in the log.
 */
export const ERROR_STATUSES = {
  INVALID_CONFIG: 'internal',
  INDEXER_STOPPING: 'internal',
  TRANSACTION_FAILED: 'internal',
  OWNERSHIP_UNAVAILABLE: 'internal',
  EMPTY: 'internal',
  TOO_LARGE: 'internal',
  INVALID_UTF8: 'internal',
  INVALID_JSON: 'internal',
  NOT_AN_OBJECT: 'internal',
  INVALID_FIELDS: 'internal',
  INVALID_WEBHOOK_URL: 'internal',
  TARGET_REFUSED: 'internal',

  INVALID_CURSOR: 400,
  INVALID_TIMESERIES_RANGE: 400,
  TIMESERIES_WIDTH_DROPPED: 400,
  USERNAME_TAKEN: 409,
  RULE_NAME_TAKEN: 409,
  INVALID_LAST_EVENT_ID: 400,

  VALIDATION_FAILED: 400,
  BAD_REQUEST: 400,
  BAD_URL: 400,
  MALFORMED_BODY: 400,
  INVALID_CSV: 400,
  INVALID_ENCODING: 400,
  NOT_A_WATCHLIST: 409,
  BUILTIN_RULE: 409,
  UNAUTHORIZED: 401,
  TOKEN_EXPIRED: 401,
  INVALID_CREDENTIALS: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  RULE_NOT_FOUND: 404,
  WEBHOOK_NOT_FOUND: 404,
  DELIVERY_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  RULE_NAME_RESERVED: 409,
  WEBHOOK_URL_REFUSED: 400,
  WEBHOOK_DISABLED: 409,
  WEBHOOK_LIMIT_REACHED: 409,
  PRECONDITION_FAILED: 412,
  PAYLOAD_TOO_LARGE: 413,
  HEADERS_TOO_LARGE: 431,
  REQUEST_TIMEOUT: 408,
  WATCHLIST_TOO_LARGE: 413,
  TOO_MANY_ENTRIES: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  TOO_MANY_STREAMS: 429,
  INTERNAL_ERROR: 500,
  ALERTS_UNAVAILABLE: 503,
  DASHBOARD_NOT_BUILT: 503,
  SERVICE_UNAVAILABLE: 503,
} as const satisfies Record<ErrorCode, number | 'internal'>

type Statuses = typeof ERROR_STATUSES

/** The codes a client can see: those with a status of their own. */
export type ProblemCode = { [C in ErrorCode]: Statuses[C] extends number ? C : never }[ErrorCode]

/** The status an error of this code is answered with; 500 for an internal code that escaped its route. */
export function errorStatus(code: ErrorCode): number {
  const status: number | 'internal' = ERROR_STATUSES[code]
  return status === 'internal' ? 500 : status
}
