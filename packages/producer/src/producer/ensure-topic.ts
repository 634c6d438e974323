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
 * it at the same moment: kafkajs answers `false` for TOPIC_ALREADY_EXISTS, which is success here.
 */
export async function ensureTopic(admin: Admin, spec: TopicSpec): Promise<EnsureTopicResult> {
  const created = await admin.createTopics({
    topics: [
      { topic: spec.topic, numPartitions: spec.partitions, replicationFactor: spec.replicationFactor },
    ],
    waitForLeaders: true,
  })
  const metadata = await admin.fetchTopicMetadata({ topics: [spec.topic] })
  return { created, partitions: metadata.topics[0]?.partitions.length ?? 0 }
}
