import { logLevel } from 'kafkajs'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  ConfigError,
  checkReadiness,
  chooseDetectionsStore,
  createKafkaLogCreator,
  describeDetectionsStore,
  ERROR_CODES,
  type ErrorCode,
  errorCode,
  growingDelay,
  IntellisiteError,
  isErrorCode,
  isKafkaError,
  kafkaBrokersSchema,
  kafkaErrorType,
  LOCAL_DETECTIONS_STORE_URL,
  parseEnvironment,
  redactUrlPassword,
  retriableKafkaErrorType,
  retry,
  warnWhenMongoUrlChoseStore,
} from '../src/index.js'

describe('configuration building blocks', () => {
  const schema = z.object({ KAFKA_BROKERS: kafkaBrokersSchema, PORT: z.coerce.number().int().default(3000) })

  it('treats empty variables as unset and splits the broker list', () => {
    expect(parseEnvironment(schema, { KAFKA_BROKERS: ' a:9092, ,b:9093 ', PORT: '' })).toEqual({
      KAFKA_BROKERS: ['a:9092', 'b:9093'],
      PORT: 3000,
    })
    expect(parseEnvironment(schema, {}).KAFKA_BROKERS).toEqual(['127.0.0.1:29092'])
  })

  it('names every bad variable at once', () => {
    let error: unknown
    try {
      parseEnvironment(schema, { KAFKA_BROKERS: 'no-port', PORT: 'x' })
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect(errorCode(error)).toBe('INVALID_CONFIG')
    expect((error as ConfigError).issues).toEqual([
      expect.stringMatching(/^KAFKA_BROKERS\.0: expected host:port/),
      expect.stringMatching(/^PORT: /),
    ])
  })

  it('refuses a list of blanks', () => {
    expect(() => parseEnvironment(schema, { KAFKA_BROKERS: ' , ' })).toThrow(/at least one host:port/)
  })
})

describe('detections store choice', () => {
  it('is DETECTIONS_STORE_URL, else MONGO_URL, else the local PostgreSQL', () => {
    expect(chooseDetectionsStore({})).toEqual({ url: LOCAL_DETECTIONS_STORE_URL, source: 'default' })
    expect(chooseDetectionsStore({ MONGO_URL: 'mongodb://m/x', DETECTIONS_STORE_URL: '' })).toEqual({
      url: 'mongodb://m/x',
      source: 'MONGO_URL',
    })
    expect(
      chooseDetectionsStore({ MONGO_URL: 'mongodb://m/x', DETECTIONS_STORE_URL: 'postgres://p/d' }),
    ).toEqual({
      url: 'postgres://p/d',
      source: 'DETECTIONS_STORE_URL',
    })
  })

  it('warns once when MONGO_URL chose it, with the password masked, and never otherwise', () => {
    const warnings: [object, string][] = []
    const logger = { warn: (object: object, message: string) => void warnings.push([object, message]) }
    warnWhenMongoUrlChoseStore(logger, { url: 'mongodb://u:secret@m/x', source: 'MONGO_URL' })
    warnWhenMongoUrlChoseStore(logger, { url: 'postgres://u:secret@p/d', source: 'DETECTIONS_STORE_URL' })
    warnWhenMongoUrlChoseStore(logger, { url: LOCAL_DETECTIONS_STORE_URL, source: 'default' })
    expect(warnings).toHaveLength(1)
    expect(warnings[0]?.[1]).toMatch(/MONGO_URL chose the detections store/)
    expect(JSON.stringify(warnings)).not.toContain('secret')
  })

  it('shows a URL without its password in a start banner', () => {
    expect(describeDetectionsStore({ url: 'postgres://u:secret@p:5432/d', source: 'default' })).toEqual({
      url: 'postgres://u:***@p:5432/d',
      from: 'default',
    })
    expect(redactUrlPassword('mongodb://m:27017/x')).toBe('mongodb://m:27017/x')
    expect(redactUrlPassword('not a url')).not.toContain('not a url')
  })
})

describe('errors', () => {
  it('carry a stable code, whether a retry can help, their cause and their class name', () => {
    class Unavailable extends IntellisiteError<'OWNERSHIP_UNAVAILABLE'> {
      constructor(cause: unknown) {
        super('OWNERSHIP_UNAVAILABLE', 'the coordinator is moving', { cause })
      }
    }
    const cause = new Error('ECONNREFUSED')
    const error = new Unavailable(cause)
    expect(error).toMatchObject({
      code: 'OWNERSHIP_UNAVAILABLE',
      retriable: true,
      cause,
      name: 'Unavailable',
    })
    expect(errorCode(error)).toBe('OWNERSHIP_UNAVAILABLE')
    expect(errorCode(new Error('plain'))).toBeUndefined()
  })

  it('take whether a retry can help from their code, unless one occurrence knows better', () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      expect(new IntellisiteError(code, 'x').retriable, code).toBe(ERROR_CODES[code].retriable)
    }
    expect(new IntellisiteError('TRANSACTION_FAILED', 'x', { retriable: false }).retriable).toBe(false)
    // @ts-expect-error: the codes are a closed set
    const unknown: ErrorCode = 'STORE_DOWN'
    expect(isErrorCode(unknown)).toBe(false)
    expect(isErrorCode('INVALID_CONFIG')).toBe(true)
  })

  it('finds a Kafka protocol error type through wrappers and per-topic errors', () => {
    const protocol = { type: 'MESSAGE_TOO_LARGE', message: 'too large' }
    const wrapped = Object.assign(new Error('retries exceeded'), { cause: protocol })
    expect(kafkaErrorType(wrapped)).toBe('MESSAGE_TOO_LARGE')
    expect(isKafkaError(wrapped, 'RECORD_LIST_TOO_LARGE', 'MESSAGE_TOO_LARGE')).toBe(true)
    const createTopics = { errors: [{ type: 'TOPIC_ALREADY_EXISTS' }, { type: 'TOPIC_ALREADY_EXISTS' }] }
    expect(kafkaErrorType(createTopics)).toBe('TOPIC_ALREADY_EXISTS')
    expect(
      kafkaErrorType({ errors: [{ type: 'TOPIC_ALREADY_EXISTS' }, { type: 'INVALID_REPLICATION_FACTOR' }] }),
    ).toBe(undefined)
    expect(isKafkaError(new Error('ECONNREFUSED'), 'MESSAGE_TOO_LARGE')).toBe(false)
  })
})

describe('retry delays', () => {
  it('wait longer at every attempt until the cap, whatever the jitter', () => {
    for (let attempt = 1; 500 * 2 ** attempt <= 30_000; attempt++) {
      expect(growingDelay(attempt + 1, 500, 30_000, () => 0)).toBeGreaterThan(
        growingDelay(attempt, 500, 30_000, () => 1),
      )
    }
    expect(growingDelay(50, 500, 30_000, () => 1)).toBe(30_000)
  })

  it('retry succeeds after failures, and gives up on an error that says it cannot be retried', async () => {
    let calls = 0
    const seen: number[] = []
    const value = await retry(
      async () => {
        if (++calls < 3) throw new Error('not yet')
        return 'done'
      },
      { initialMs: 1, maxMs: 4, onRetry: (_err, attempt) => seen.push(attempt) },
    )
    expect(value).toBe('done')
    expect(seen).toEqual([1, 2])

    const fatal = Object.assign(new Error('bad request'), { retriable: false })
    let fatalCalls = 0
    await expect(
      retry(
        async () => {
          fatalCalls++
          throw fatal
        },
        { initialMs: 1, maxMs: 4 },
      ),
    ).rejects.toBe(fatal)
    expect(fatalCalls).toBe(1)
  })

  it('retry gives up after its attempts or its time', async () => {
    let calls = 0
    const failing = async () => {
      calls++
      throw new Error(`failure ${calls}`)
    }
    await expect(retry(failing, { initialMs: 1, maxMs: 2, attempts: 4 })).rejects.toThrow('failure 4')
    calls = 0
    const started = Date.now()
    await expect(retry(failing, { initialMs: 20, maxMs: 40, withinMs: 100 })).rejects.toThrow(/failure/)
    expect(Date.now() - started).toBeLessThan(150)
  })
})

describe('readiness', () => {
  it('is ready only when no check is down, and names the detections backend', async () => {
    const never = () => new Promise(() => {})
    const readiness = await checkReadiness(
      {
        joined: () => true,
        answering: async () => {},
        optional: () => 'disabled' as const,
        refused: () => false,
        throws: () => {
          throw new Error('refused')
        },
        rejects: () => Promise.reject(new Error('gone')),
        hangs: never,
      },
      { detections: { backend: 'postgres', check: async () => {} }, timeoutMs: 50 },
    )
    expect(readiness).toEqual({
      status: 'unavailable',
      checks: {
        joined: 'up',
        answering: 'up',
        optional: 'disabled',
        refused: 'down',
        throws: 'down',
        rejects: 'down',
        hangs: 'down',
        detections: { backend: 'postgres', status: 'up' },
      },
    })
    expect(await checkReadiness({ joined: () => true, optional: () => 'disabled' })).toEqual({
      status: 'ready',
      checks: { joined: 'up', optional: 'disabled' },
    })
  })
})

describe('kafkajs logs', () => {
  function capture() {
    const lines: { level: number; msg: string; type?: string }[] = []
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) })
    return { log: createKafkaLogCreator(logger)(), lines }
  }
  const entry = (level: logLevel, message: string, error?: string) => ({
    namespace: 'Connection',
    level,
    label: 'ERROR',
    log: { timestamp: new Date().toISOString(), message, ...(error && { error }) },
  })

  it('logs a retriable protocol error in a response as debug, naming its type', () => {
    const { log, lines } = capture()
    log(
      entry(
        logLevel.ERROR,
        'Response AddOffsetsToTxn(key: 25, version: 1)',
        'The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing',
      ),
    )
    expect(lines).toEqual([expect.objectContaining({ level: 20, type: 'CONCURRENT_TRANSACTIONS' })])
  })

  it('keeps any other error an error', () => {
    const { log, lines } = capture()
    log(
      entry(
        logLevel.ERROR,
        'Response Produce(key: 0, version: 7)',
        'Broker: Not authorized to access topics',
      ),
    )
    log(entry(logLevel.ERROR, 'Crash: KafkaJSNonRetriableError'))
    expect(lines.map((l) => l.level)).toEqual([50, 50])
  })

  it('names the type of a retriable error through its wrappers, and nothing for others', () => {
    const protocol = Object.assign(new Error('loading'), {
      type: 'COORDINATOR_LOAD_IN_PROGRESS',
      retriable: true,
    })
    expect(retriableKafkaErrorType(new Error('retries exceeded', { cause: protocol }))).toBe(
      'COORDINATOR_LOAD_IN_PROGRESS',
    )
    const fatal = Object.assign(new Error('too large'), { type: 'MESSAGE_TOO_LARGE', retriable: false })
    expect(retriableKafkaErrorType(fatal)).toBeUndefined()
    expect(retriableKafkaErrorType(new Error('plain'))).toBeUndefined()
  })
})
