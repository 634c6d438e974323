// The producer as users run it (a real process) against the real broker: what reaches the topic
// must be byte for byte what the challenge's producer sends.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { type IHeaders, Kafka, logLevel } from 'kafkajs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TS_NODE_FLAGS } from '../../../test/support/node-flags.js'
import { createDetectionGenerator, encodeDetection } from '../src/detection-generator.js'

const root = fileURLToPath(new URL('../../..', import.meta.url))
const kafka = new Kafka({
  clientId: 'producer-test',
  brokers: (process.env.KAFKA_BROKERS ?? '').split(','),
  logLevel: logLevel.NOTHING,
})
const admin = kafka.admin()
const topics: string[] = []

beforeAll(() => admin.connect())
afterAll(async () => {
  await admin.deleteTopics({ topics }).catch(() => {})
  await admin.disconnect()
})

interface Run {
  child: ChildProcess
  output: () => string
  exit: Promise<number | null>
}

function runProducer(args: string[]): Run {
  const child = spawn(process.execPath, [...TS_NODE_FLAGS, 'packages/producer/src/main.ts', ...args], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout?.on('data', (chunk) => {
    output += chunk
  })
  child.stderr?.on('data', (chunk) => {
    output += chunk
  })
  const exit = once(child, 'exit').then(([code]) => code as number | null)
  return { child, output: () => output, exit }
}

interface Received {
  key: Buffer | null
  value: string
  headers: IHeaders | undefined
  partition: number
}

async function consumeAll(topic: string, expected: number): Promise<Received[]> {
  const consumer = kafka.consumer({ groupId: `producer-test-${randomUUID()}` })
  const received: Received[] = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`received ${received.length}/${expected}`)), 30_000)
      consumer
        .run({
          eachMessage: async ({ message, partition }) => {
            received.push({
              key: message.key,
              value: message.value?.toString('utf8') ?? '',
              headers: message.headers,
              partition,
            })
            if (received.length >= expected) {
              clearTimeout(timer)
              resolve()
            }
          },
        })
        .catch(reject)
    })
  } finally {
    await consumer.disconnect()
  }
  return received
}

describe('producer process', () => {
  it('creates the topic with the requested partitions and sends the exact JSON, keyless and headerless', async () => {
    const topic = `producer-test-${randomUUID()}`
    topics.push(topic)
    const run = runProducer([
      '--topic',
      topic,
      '--count',
      '300',
      '--burst',
      '--batch-size',
      '50',
      '--partitions',
      '2',
      '--seed',
      'it',
    ])
    expect(await run.exit, run.output()).toBe(0)

    const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
    expect(metadata.topics[0]?.partitions).toHaveLength(2)

    const received = await consumeAll(topic, 300)
    const generate = createDetectionGenerator({ seed: 'it' })
    const expected = Array.from({ length: 300 }, () => encodeDetection(generate()).toString('utf8'))
    expect(received.map((r) => r.value).sort()).toEqual(expected.sort())
    expect(received.every((r) => r.key === null)).toBe(true)
    expect(received.every((r) => Object.keys(r.headers ?? {}).length === 0)).toBe(true)
    expect(new Set(received.map((r) => r.partition)).size).toBe(2)
    expect(run.output()).toContain('"sent":300')
  })

  it('uses an existing topic as it is, and stops on SIGTERM with exit 0 after flushing every detection', async () => {
    const topic = `producer-test-${randomUUID()}`
    topics.push(topic)
    // Created beforehand with one partition, as the indexer or the challenge's broker may have done.
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
    const run = runProducer(['--topic', topic, '--rate', '40'])
    const deadline = Date.now() + 20_000
    while (!run.output().includes('producing detections') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50))
    }
    await new Promise((r) => setTimeout(r, 1000))
    run.child.kill('SIGTERM')
    expect(await run.exit, run.output()).toBe(0)
    const sent = Number(/"sent":(\d+),"elapsedMs"/.exec(run.output())?.[1])
    // About 40 in a second at 40/s; a broken pacing loop would send far more or nothing.
    expect(sent).toBeGreaterThanOrEqual(20)
    expect(sent).toBeLessThanOrEqual(80)
    expect(run.output()).toMatch(/"created":false,"partitions":1,"msg":"topic exists"/)
    expect(run.output()).not.toMatch(/"level":50/)
    const offsets = await admin.fetchTopicOffsets(topic)
    expect(offsets.reduce((sum, p) => sum + Number(p.high), 0)).toBe(sent)
  })
})
