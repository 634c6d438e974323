import { randomUUID } from 'node:crypto'
import { ensureTopics, serializeError } from '@intellisite/common'
import { pino } from 'pino'
import { loadConfig, usage } from './config.js'
import { createDetectionGenerator } from './detection-generator.js'
import { sendDetections } from './producer/detections-sender.js'
import { createKafka, createProducer } from './producer/kafka-client.js'

const loaded = loadConfig(process.env, process.argv.slice(2))
if (!loaded.ok) {
  if ('help' in loaded) {
    console.log(usage())
    process.exit(0)
  }
  console.error(
    `producer: invalid configuration\n${loaded.errors.map((e) => `  - ${e}`).join('\n')}\n\n${usage()}`,
  )
  process.exit(1)
}
const config = loaded.config
const log = pino({ name: 'producer', level: config.LOG_LEVEL, serializers: { err: serializeError } })

// First SIGINT/SIGTERM: stop generating, wait for in-flight sends, disconnect, exit 0.
// A second one means the user does not want to wait.
const stop = new AbortController()
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stop.signal.aborted) {
      log.warn({ signal }, 'second signal, exiting without flushing')
      process.exit(130)
    }
    log.info({ signal }, 'stopping: flushing in-flight detections')
    stop.abort()
  })
}

const seed = config.PRODUCER_SEED ?? randomUUID().slice(0, 8)
const kafka = createKafka({ clientId: config.KAFKA_CLIENT_ID, brokers: config.KAFKA_BROKERS, log })
const producer = createProducer(kafka)

try {
  if (config.PRODUCER_CREATE_TOPIC) {
    const admin = kafka.admin()
    await admin.connect()
    try {
      const [topic] = await ensureTopics(admin, [
        {
          topic: config.DETECTIONS_TOPIC,
          numPartitions: config.TOPIC_PARTITIONS,
          replicationFactor: config.TOPIC_REPLICATION_FACTOR,
        },
      ])
      log.info({ ...topic }, topic?.created ? 'topic created' : 'topic exists')
    } finally {
      await admin.disconnect()
    }
  }
  await producer.connect()
  log.info(
    {
      topic: config.DETECTIONS_TOPIC,
      brokers: config.KAFKA_BROKERS,
      mode: config.PRODUCER_BURST ? 'burst' : 'rate',
      rate: config.PRODUCER_BURST ? null : config.PRODUCER_RATE,
      count: config.PRODUCER_COUNT ?? null,
      seed,
    },
    `producing detections (replay this stream with PRODUCER_SEED=${seed})`,
  )
  const summary = await sendDetections(
    {
      producer,
      topic: config.DETECTIONS_TOPIC,
      generate: createDetectionGenerator({ seed }),
      log,
      rate: config.PRODUCER_RATE,
      count: config.PRODUCER_COUNT,
      burst: config.PRODUCER_BURST,
      batchSize: config.PRODUCER_BATCH_SIZE,
      progressIntervalMs: config.PRODUCER_PROGRESS_INTERVAL_MS,
    },
    stop.signal,
  )
  await producer.disconnect()
  log.info(
    {
      sent: summary.sent,
      elapsedMs: Math.round(summary.elapsedMs),
      perSecond: Math.round(summary.perSecond),
    },
    'done',
  )
  process.exit(0)
} catch (err) {
  log.error({ err }, 'producer failed')
  await producer.disconnect().catch(() => {})
  process.exit(1)
}
