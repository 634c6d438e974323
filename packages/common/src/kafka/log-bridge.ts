import { createRequire } from 'node:module'
import { type LogEntry, logLevel } from 'kafkajs'
import type { Logger } from 'pino'

interface ProtocolErrorCode {
  type: string
  retriable: boolean
  message: string
}

// kafkajs logs a failed response with the protocol error's message only; its own table of error
// codes says which of those messages are retriable (kafkajs or our code retries them).
const { errorCodes } = createRequire(import.meta.url)('kafkajs/src/protocol/error.js') as {
  errorCodes: ProtocolErrorCode[]
}
const RETRIABLE = new Map(errorCodes.filter((e) => e.retriable).map((e) => [e.message, e.type]))

/** kafkajs messages that are noise for us, with why. */
const IGNORED = [
  // Our transactions make a failed send harmless (the whole transaction aborts), so kafkajs's
  // warning about limited retries on idempotent producers does not apply.
  'Limiting retries for the idempotent producer',
]

/** Routes kafkajs's own logs into pino, as a `kafkajs` child logger (pass as `logCreator`). */
export function createKafkaLogCreator(logger: Logger) {
  const kafkaLogger = logger.child({ component: 'kafkajs' })
  return () =>
    ({ level, log }: LogEntry) => {
      const { message, timestamp: _timestamp, ...fields } = log
      if (IGNORED.some((prefix) => message.startsWith(prefix))) return
      // A retriable error in a response (the coordinator still loading, a transaction still being
      // completed after a restart) is an expected step that is retried: whoever retries it says so
      // if it lasts, so it is not an ERROR here.
      const retriableType = typeof fields.error === 'string' ? RETRIABLE.get(fields.error) : undefined
      if (retriableType !== undefined && level <= logLevel.WARN) {
        kafkaLogger.debug({ ...fields, type: retriableType }, message)
        return
      }
      switch (level) {
        case logLevel.ERROR:
        case logLevel.NOTHING:
          kafkaLogger.error(fields, message)
          break
        case logLevel.WARN:
          kafkaLogger.warn(fields, message)
          break
        case logLevel.INFO:
          kafkaLogger.info(fields, message)
          break
        default:
          kafkaLogger.debug(fields, message)
      }
    }
}
