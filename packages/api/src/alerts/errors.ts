/** Errors the app's problem+json handler renders (statusCode, code, headers); all before the stream opens. */
export class AlertsHttpError extends Error {
  readonly statusCode: number
  readonly code: string
  readonly headers: Record<string, string> | undefined
  constructor(statusCode: number, code: string, message: string, headers?: Record<string, string>) {
    super(message)
    this.name = 'AlertsHttpError'
    this.statusCode = statusCode
    this.code = code
    this.headers = headers
  }
}

const CHALLENGE = 'Bearer realm="intellisite"'

/** Same codes as the REST routes: `TOKEN_EXPIRED` tells a client to log in again. */
export function unauthorized(reason: 'missing' | 'invalid' | 'expired'): AlertsHttpError {
  const detail = {
    missing: 'An access token is required: `Authorization: Bearer <token>` or the `access_token` parameter.',
    invalid: 'The access token is invalid.',
    expired: 'The access token has expired: request a new one from POST /auth/token.',
  }[reason]
  const header = reason === 'missing' ? CHALLENGE : `${CHALLENGE}, error="invalid_token"`
  return new AlertsHttpError(401, reason === 'expired' ? 'TOKEN_EXPIRED' : 'UNAUTHORIZED', detail, {
    'www-authenticate': header,
  })
}
