/**
 * The Kafka protocol error type (e.g. `MESSAGE_TOO_LARGE`, `TOPIC_ALREADY_EXISTS`) of a kafkajs
 * error, looked up through its cause chain (kafkajs wraps protocol errors in retry errors) and
 * through the per-topic `errors` of admin calls when they all agree.
 */
export function kafkaErrorType(err: unknown): string | undefined {
  let e = err as { type?: unknown; cause?: unknown; errors?: unknown } | undefined
  for (let depth = 0; e && depth < 10; depth++) {
    if (typeof e.type === 'string') return e.type
    if (Array.isArray(e.errors) && e.errors.length > 0) {
      const types = new Set(e.errors.map(kafkaErrorType))
      if (types.size === 1) return [...types][0]
    }
    e = e.cause as typeof e
  }
  return undefined
}

/** Whether the error is (or wraps) one of these Kafka protocol error types. */
export function isKafkaError(err: unknown, ...types: string[]): boolean {
  const type = kafkaErrorType(err)
  return type !== undefined && types.includes(type)
}

/**
 * The Kafka error type when the error is (or wraps) a protocol error that kafkajs marks retriable
 * (e.g. `CONCURRENT_TRANSACTIONS` while a restarted producer's previous transaction completes):
 * an expected step, logged without a stack.
 */
export function retriableKafkaErrorType(err: unknown): string | undefined {
  let e = err as { type?: unknown; retriable?: unknown; cause?: unknown } | undefined
  for (let depth = 0; e && depth < 10; depth++) {
    if (typeof e.type === 'string') return e.retriable === true ? e.type : undefined
    e = e.cause as typeof e
  }
  return undefined
}
