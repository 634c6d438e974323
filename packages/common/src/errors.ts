/**
 * Every code an error of ours can carry, closed: a new code is added here or it does not compile.
 * `retriable` says whether the same operation, tried again unchanged, can succeed. Whether and how a
 * code reaches HTTP is the API's business (its status table covers every code here).
 */
export const ERROR_CODES = {
  // Start-up
  INVALID_CONFIG: { retriable: false },

  // Indexer: batches left uncommitted so Kafka redelivers them
  INDEXER_STOPPING: { retriable: false },
  TRANSACTION_FAILED: { retriable: true },
  OWNERSHIP_UNAVAILABLE: { retriable: true },

  // Indexer: why a record could not be decoded. Dead letters and the dead-letter metric carry these
  // codes as they are, so they keep their short names.
  EMPTY: { retriable: false },
  TOO_LARGE: { retriable: false },
  INVALID_UTF8: { retriable: false },
  INVALID_JSON: { retriable: false },
  NOT_AN_OBJECT: { retriable: false },
  INVALID_FIELDS: { retriable: false },

  // Webhook targets
  INVALID_WEBHOOK_URL: { retriable: false },
  TARGET_REFUSED: { retriable: false },

  // Detections store: the query a caller asked for cannot be answered
  INVALID_CURSOR: { retriable: false },
  INVALID_TIMESERIES_RANGE: { retriable: false },
  TIMESERIES_WIDTH_DROPPED: { retriable: false },

  // API data: accounts, rules and the alerts stream
  USERNAME_TAKEN: { retriable: false },
  RULE_NAME_TAKEN: { retriable: false },
  INVALID_LAST_EVENT_ID: { retriable: false },

  // API problems raised by routes and the error handler
  VALIDATION_FAILED: { retriable: false },
  BAD_REQUEST: { retriable: false },
  BAD_URL: { retriable: false },
  MALFORMED_BODY: { retriable: false },
  INVALID_CSV: { retriable: false },
  INVALID_ENCODING: { retriable: false },
  NOT_A_WATCHLIST: { retriable: false },
  BUILTIN_RULE: { retriable: false },
  UNAUTHORIZED: { retriable: false },
  TOKEN_EXPIRED: { retriable: false },
  INVALID_CREDENTIALS: { retriable: false },
  FORBIDDEN: { retriable: false },
  NOT_FOUND: { retriable: false },
  RULE_NOT_FOUND: { retriable: false },
  WEBHOOK_NOT_FOUND: { retriable: false },
  DELIVERY_NOT_FOUND: { retriable: false },
  METHOD_NOT_ALLOWED: { retriable: false },
  CONFLICT: { retriable: false },
  RULE_NAME_RESERVED: { retriable: false },
  WEBHOOK_URL_REFUSED: { retriable: false },
  WEBHOOK_DISABLED: { retriable: false },
  WEBHOOK_LIMIT_REACHED: { retriable: false },
  PRECONDITION_FAILED: { retriable: false },
  PAYLOAD_TOO_LARGE: { retriable: false },
  HEADERS_TOO_LARGE: { retriable: false },
  REQUEST_TIMEOUT: { retriable: true },
  WATCHLIST_TOO_LARGE: { retriable: false },
  TOO_MANY_ENTRIES: { retriable: false },
  UNSUPPORTED_MEDIA_TYPE: { retriable: false },
  RATE_LIMITED: { retriable: true },
  TOO_MANY_STREAMS: { retriable: true },
  INTERNAL_ERROR: { retriable: false },
  ALERTS_UNAVAILABLE: { retriable: true },
  DASHBOARD_NOT_BUILT: { retriable: false },
  SERVICE_UNAVAILABLE: { retriable: true },
} as const satisfies Record<string, { retriable: boolean }>

export type ErrorCode = keyof typeof ERROR_CODES

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value)
}

/**
 * The base of every error the services raise on purpose: a stable `code` that callers and logs
 * match on (never the message, never an `instanceof` ladder), whether trying again can help (the
 * code's, unless one occurrence knows better), and the `cause`.
 */
export class IntellisiteError<Code extends ErrorCode = ErrorCode> extends Error {
  readonly code: Code
  readonly retriable: boolean
  constructor(code: Code, message: string, options: { cause?: unknown; retriable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.retriable = options.retriable ?? ERROR_CODES[code].retriable
  }
}

/** The `code` of an error of ours, or undefined for anything else. */
export function errorCode(err: unknown): ErrorCode | undefined {
  return err instanceof IntellisiteError ? err.code : undefined
}
