import type { Admin } from 'kafkajs'
import type { Logger } from 'pino'
import { isKafkaError } from './errors.js'

export interface TopicSpec {
  topic: string
  numPartitions: number
  replicationFactor: number
  /** Topic configs for a topic this call creates, e.g. `min.insync.replicas`. */
  configEntries?: { name: string; value: string }[]
}

export interface EnsuredTopic {
  topic: string
  created: boolean
  /** The topic's real partition count: it differs from the request when the topic already existed. */
  partitions: number
}

/**
 * Creates each topic that does not exist yet (brokers run with auto-creation off, and the
 * challenge's producer would create a one-partition topic). Another process creating the same
 * topic at the same moment is success. Looking first keeps kafkajs from logging
 * TOPIC_ALREADY_EXISTS as an error on every start.
 */
export async function ensureTopics(
  admin: Admin,
  specs: readonly TopicSpec[],
  logger?: Logger,
): Promise<EnsuredTopic[]> {
  const existing = new Set(await admin.listTopics())
  const created = new Set<string>()
  for (const spec of specs) {
    if (existing.has(spec.topic)) continue
    try {
      if (await admin.createTopics({ topics: [spec], waitForLeaders: false })) {
        created.add(spec.topic)
        logger?.info(
          { topic: spec.topic, numPartitions: spec.numPartitions, replicationFactor: spec.replicationFactor },
          'topic created',
        )
      }
    } catch (err) {
      if (!isKafkaError(err, 'TOPIC_ALREADY_EXISTS')) throw err
    }
  }
  const metadata = await waitForLeaders(
    admin,
    specs.map((spec) => spec.topic),
  )
  return specs.map((spec) => ({
    topic: spec.topic,
    created: created.has(spec.topic),
    partitions: metadata.topics.find((t) => t.name === spec.topic)?.partitions.length ?? 0,
  }))
}

type TopicMetadata = Awaited<ReturnType<Admin['fetchTopicMetadata']>>

/**
 * Polls metadata until every partition of the topics has a leader. kafkajs's own
 * `waitForLeaders` asks the one broker that took the create request, once: on a cluster that
 * broker may not know the new topic yet and answers UNKNOWN_TOPIC_OR_PARTITION, and the call fails
 * although the topic was created. Metadata from any broker, polled, does not have that race.
 */
export async function waitForLeaders(
  admin: Admin,
  topics: readonly string[],
  timeoutMs = 30_000,
): Promise<TopicMetadata> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: [...topics] })
      const led = metadata.topics.every(
        (t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0),
      )
      if (led && metadata.topics.length === topics.length) return metadata
    } catch (err) {
      if (Date.now() > deadline) throw err
    }
    if (Date.now() > deadline) throw new Error(`no leader for every partition of ${topics.join(', ')}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}
