import { Writable } from 'node:stream'
import kafkajs from 'kafkajs'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { IntellisiteError, serializeError } from '../src/index.js'

// kafkajs is CommonJS and Node's ESM loader does not detect these exports by name.
const { KafkaJSAggregateError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError } = kafkajs

/** What kafkajs throws for a broker's error code 19 (its createErrorFromCode). */
function notEnoughReplicas() {
  return new KafkaJSProtocolError(
    Object.assign(new Error('Messages are rejected since there are fewer in-sync replicas than required'), {
      type: 'NOT_ENOUGH_REPLICAS',
      code: 19,
      retriable: true,
    }),
  )
}

/** The `err` of one line logged by a pino logger that uses the serializer. */
function logged(err: unknown): Record<string, unknown> {
  const lines: string[] = []
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk))
      done()
    },
  })
  pino({ serializers: { err: serializeError } }, destination).error({ err }, 'failed')
  return JSON.parse(lines[0] ?? '{}').err
}

describe('serializeError', () => {
  it("keeps a kafkajs protocol error's Kafka type, code and retriable", () => {
    expect(logged(notEnoughReplicas())).toMatchObject({
      type: 'NOT_ENOUGH_REPLICAS',
      name: 'KafkaJSProtocolError',
      code: 19,
      retriable: true,
      message: 'Messages are rejected since there are fewer in-sync replicas than required',
    })
  })

  it('keeps the protocol error that kafkajs wraps in its retry error, as the cause', () => {
    const err = logged(
      new KafkaJSNumberOfRetriesExceeded(notEnoughReplicas(), { retryCount: 5, retryTime: 800 }),
    )
    expect(err).toMatchObject({
      type: 'KafkaJSNumberOfRetriesExceeded',
      retriable: false,
      retryCount: 5,
      cause: { type: 'NOT_ENOUGH_REPLICAS', code: 19, retriable: true },
    })
    // The logged error's stack already holds the cause's.
    expect(err.stack).toContain('Caused by: KafkaJSProtocolError')
    expect(err.cause).not.toHaveProperty('stack')
  })

  it('follows a cause chain of our errors and the errors of an aggregate', () => {
    const ours = new IntellisiteError('OWNERSHIP_UNAVAILABLE', 'partition 0: ownership not confirmed', {
      cause: new KafkaJSAggregateError('topics not created', [notEnoughReplicas()]),
      retriable: true,
    })
    expect(logged(ours)).toMatchObject({
      type: 'IntellisiteError',
      code: 'OWNERSHIP_UNAVAILABLE',
      retriable: true,
      cause: {
        type: 'KafkaJSAggregateError',
        aggregateErrors: [{ type: 'NOT_ENOUGH_REPLICAS', code: 19 }],
      },
    })
  })

  it('stops at a cause chain that loops', () => {
    const first = new Error('first')
    const second = new Error('second', { cause: first })
    Object.defineProperty(first, 'cause', { value: second })
    let depth = 0
    for (let e = logged(first); e.cause; e = e.cause as Record<string, unknown>) depth++
    expect(depth).toBeLessThan(10)
  })

  it('leaves what is not an error as pino does', () => {
    expect(logged('a plain message')).toBe('a plain message')
    expect(logged({ reason: 'x' })).toEqual({ reason: 'x' })
  })
})
