/**
 * The base of every error the services raise on purpose: a stable `code` that callers and logs
 * match on (never the message, never an `instanceof` ladder), whether trying again can help, and
 * the `cause`.
 */
export class IntellisiteError<Code extends string = string> extends Error {
  readonly code: Code
  readonly retriable: boolean
  constructor(code: Code, message: string, options: { cause?: unknown; retriable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.retriable = options.retriable ?? false
  }
}

/** The `code` of an error of ours, or undefined for anything else. */
export function errorCode(err: unknown): string | undefined {
  return err instanceof IntellisiteError ? err.code : undefined
}
