import { createRequire } from 'node:module'
import { serializeError } from '@intellisite/common'
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino'

/** Anything that can carry a credential, wherever it appears in a log object. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'authorization',
  'password',
  '*.password',
  'passwordHash',
  '*.passwordHash',
  'access_token',
  '*.access_token',
  'token',
  '*.token',
  'client_secret',
  '*.client_secret',
]

const SECRET_QUERY = /([?&](?:access_token|token|password)=)[^&#]*/gi

/** Browser EventSource clients put the token in the query string: never log it. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY, '$1[Redacted]')
}

interface LoggedRequest {
  id?: unknown
  method?: string
  url?: string
  ip?: string
  socket?: { remotePort?: number }
  routeOptions?: { url?: string }
}

export function loggerOptions(level: string, pretty = false): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
    serializers: {
      req: (req: LoggedRequest) => ({
        method: req.method,
        url: req.url === undefined ? undefined : redactUrl(req.url),
        route: req.routeOptions?.url,
        remoteAddress: req.ip,
        remotePort: req.socket?.remotePort,
      }),
      err: serializeError,
    },
    ...(pretty && { transport: { target: 'pino-pretty', options: { colorize: true } } }),
  }
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  // Pretty output only for a human at a terminal; containers and tests get JSON lines. pino-pretty
  // is a dev dependency: a production image run with a TTY (`docker run -t`) logs JSON instead.
  const pretty = destination === undefined && process.stdout.isTTY === true && prettyInstalled()
  return destination ? pino(loggerOptions(level), destination) : pino(loggerOptions(level, pretty))
}

function prettyInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty')
    return true
  } catch {
    return false
  }
}
