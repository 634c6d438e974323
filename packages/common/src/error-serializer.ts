import { pino } from 'pino'

/** Causes nested under one logged error, at most (a cause chain can loop). */
const MAX_DEPTH = 8

/**
 * pino's `err` serializer (pass as `serializers: { err: serializeError }`), keeping what a kafkajs
 * error says about the broker. pino sets `type` to the class name, which hides kafkajs's own
 * `type`, the Kafka error (e.g. `NOT_ENOUGH_REPLICAS`); here `type` is that one when there is one,
 * and `name` still names the class. pino also folds causes into the message and stack only, which
 * drops the `type`, `code` and `retriable` of the protocol error that kafkajs wraps in its retry
 * errors; here `cause` (and each of `aggregateErrors`) is serialized the same way, without its
 * stack, which the stack of the logged error already holds.
 */
export function serializeError(err: unknown): unknown {
  return serialize(err, 0)
}

function serialize(err: unknown, depth: number): unknown {
  // Anything else is left as pino leaves it.
  const standard = pino.stdSerializers.err(err as Error)
  if (!(err instanceof Error)) return standard
  const serialized: Record<string, unknown> = standard
  const { type, cause, errors } = err as { type?: unknown; cause?: unknown; errors?: unknown }
  if (typeof type === 'string') {
    serialized.name ??= serialized.type
    serialized.type = type
  }
  if (depth >= MAX_DEPTH) return serialized
  if (cause instanceof Error) serialized.cause = nested(cause, depth + 1)
  if (Array.isArray(errors)) serialized.aggregateErrors = errors.map((e) => nested(e, depth + 1))
  return serialized
}

/** A cause, as a plain object without its stack. */
function nested(err: unknown, depth: number): unknown {
  const serialized = serialize(err, depth)
  if (!(err instanceof Error)) return serialized
  const { stack: _stack, ...fields } = Object.fromEntries(Object.entries(serialized as object))
  return fields
}
