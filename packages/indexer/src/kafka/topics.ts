import type { Admin } from 'kafkajs'
import type { Logger } from 'pino'

export interface TopicSpec {
  topic: string
  numPartitions: number
  replicationFactor: number
}

/**
 * Creates each topic that does not exist yet (the broker's auto-creation is off, and the
 * challenge's producer would create a one-partition topic). Another instance creating the same
 * topic at the same moment is not an error.
 */
export async function ensureTopics(admin: Admin, specs: readonly TopicSpec[], logger: Logger): Promise<void> {
  const existing = new Set(await admin.listTopics())
  for (const spec of specs) {
    if (existing.has(spec.topic)) continue
    try {
      const created = await admin.createTopics({ topics: [spec], waitForLeaders: true })
      if (created) logger.info(spec, 'topic created')
    } catch (err) {
      if (!isAlreadyExists(err)) throw err
    }
  }
}

function isAlreadyExists(err: unknown): boolean {
  const e = err as { type?: string; errors?: unknown[] }
  if (e.type === 'TOPIC_ALREADY_EXISTS') return true
  return Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every(isAlreadyExists)
}

export async function partitionCount(admin: Admin, topic: string): Promise<number> {
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
  const count = metadata.topics[0]?.partitions.length ?? 0
  if (count === 0) throw new Error(`topic ${topic} has no partitions`)
  return count
}
