import { randomUUID } from 'node:crypto'
import type { Alert } from '@intellisite/detections-store'
import type { Kafka } from 'kafkajs'
import type { Logger } from 'pino'
import { parseAlert } from './alert-entry.js'
import type { Position } from './resume-token.js'

export interface KafkaReplayOptions {
  kafka: Kafka
  topic: string
  groupPrefix: string
  /** Replays [from[p], to[p]) for every partition. */
  from: Position
  to: Position
  timeoutMs: number
  /** Awaited per alert, so the replay runs at the pace of its client. False stops the replay. */
  onAlert(partition: number, offset: number, alert: Alert): Promise<boolean>
  logger: Logger
}

/**
 * Reads a bounded range of the alerts topic for one resuming client that the in-memory window
 * cannot serve, then disconnects. Like the live consumer it uses a throwaway group (kafkajs has no
 * `assign()`) and never commits. It is never used for live delivery; the caller caps how many run
 * at once. Resolves true when every partition reached `to`.
 */
export async function replayFromKafka(options: KafkaReplayOptions): Promise<boolean> {
  const { topic, from, to, logger } = options
  const reached: number[] = []
  const pending = new Set<number>()
  to.forEach((end, partition) => {
    reached[partition] = from[partition] ?? 0
    if (reached[partition]! < end) pending.add(partition)
  })
  if (pending.size === 0) return true

  const consumer = options.kafka.consumer({
    groupId: `${options.groupPrefix}-replay-${randomUUID()}`,
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: 500,
  })
  let finish: (ok: boolean) => void = () => undefined
  const finished = new Promise<boolean>((resolve) => {
    finish = resolve
  })
  const timer = setTimeout(() => finish(false), options.timeoutMs)
  const progress = (partition: number, next: number) => {
    if (next > reached[partition]!) reached[partition] = next
    if (pending.has(partition) && reached[partition]! >= to[partition]!) {
      pending.delete(partition)
      consumer.pause([{ topic, partitions: [partition] }])
      if (pending.size === 0) finish(true)
    }
  }
  try {
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.topic === topic && payload.partition < to.length) {
        progress(payload.partition, Number(payload.lastOffset) + 1)
      }
    })
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, heartbeat, isRunning }) => {
        const partition = batch.partition
        const end = to[partition]
        if (end === undefined || !pending.has(partition)) return
        for (const message of batch.messages) {
          if (!isRunning()) return
          const offset = Number(message.offset)
          if (offset < reached[partition]!) continue
          if (offset >= end) break
          const alert = parseAlert(message.value)
          if (alert && !(await options.onAlert(partition, offset, alert))) {
            finish(false)
            return
          }
          progress(partition, offset + 1)
          await heartbeat()
        }
      },
    })
    const idle = to.map((_, partition) => partition).filter((partition) => !pending.has(partition))
    if (idle.length > 0) consumer.pause([{ topic, partitions: idle }])
    for (const partition of pending) {
      consumer.seek({ topic, partition, offset: String(reached[partition]) })
    }
    return await finished
  } catch (err) {
    logger.warn({ err }, 'alerts replay from Kafka failed')
    return false
  } finally {
    clearTimeout(timer)
    await consumer.disconnect().catch(() => undefined)
  }
}
