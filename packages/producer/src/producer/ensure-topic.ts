import type { Admin } from 'kafkajs'

export interface TopicSpec {
  topic: string
  partitions: number
  replicationFactor: number
}

export interface EnsureTopicResult {
  created: boolean
  /** The topic's real partition count, which differs from the request when it already existed. */
  partitions: number
}

/**
 * Creates the topic unless it exists. Another process (the indexer, a second producer) may create
 * it between our look and our request: kafkajs answers `false` for TOPIC_ALREADY_EXISTS, which is
 * success here. Looking first keeps kafkajs from logging that answer as an error on every start.
 */
export async function ensureTopic(admin: Admin, spec: TopicSpec): Promise<EnsureTopicResult> {
  const exists = (await admin.listTopics()).includes(spec.topic)
  const created =
    !exists &&
    (await admin.createTopics({
      topics: [
        { topic: spec.topic, numPartitions: spec.partitions, replicationFactor: spec.replicationFactor },
      ],
      waitForLeaders: true,
    }))
  const metadata = await admin.fetchTopicMetadata({ topics: [spec.topic] })
  return { created, partitions: metadata.topics[0]?.partitions.length ?? 0 }
}
