import { type LogEntry, logLevel } from 'kafkajs'
import type { Logger } from 'pino'

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
