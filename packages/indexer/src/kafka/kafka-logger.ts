import { type LogEntry, logLevel } from 'kafkajs'
import type { Logger } from 'pino'

/** Routes kafkajs's own logs into pino, as a `kafkajs` child logger. */
export function createKafkaLogCreator(logger: Logger) {
  const kafkaLogger = logger.child({ component: 'kafkajs' })
  return () =>
    ({ level, log }: LogEntry) => {
      const { message, timestamp: _timestamp, ...fields } = log
      // Transactions make a failed send harmless (the whole transaction aborts), so kafkajs's
      // warning about limited retries on idempotent producers does not apply.
      if (message.startsWith('Limiting retries for the idempotent producer')) return
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
