import type { Consumer } from 'kafkajs'
import type { Logger } from 'pino'

export interface GroupMembershipOptions {
  consumer: Consumer
  topic: string
  /** Past this long without a word from the broker, the group would have dropped us anyway. */
  sessionTimeoutMs: number
  logger: Logger
  /** Every join: the partitions of `topic` this member now owns. */
  onAssigned: (partitions: ReadonlySet<number>) => void
  /** The consumer crashed and kafkajs will not restart it. */
  onFatalError: (err: Error) => void
}

/**
 * What the group says about this member: whether it is in, which partitions it was given, and
 * when the broker last answered it (a heartbeat or a fetch, empty ones included). A lost broker
 * makes kafkajs retry for a long time before it crashes the consumer; readiness must not wait
 * for that.
 */
export function watchGroupMembership(options: GroupMembershipOptions) {
  const { consumer, topic, sessionTimeoutMs, logger } = options
  const { GROUP_JOIN, CRASH, STOP, DISCONNECT, HEARTBEAT, FETCH } = consumer.events
  let joined = false
  let lastContact = 0
  const contact = () => {
    lastContact = Date.now()
  }
  const left = () => {
    joined = false
  }
  consumer.on(HEARTBEAT, contact)
  consumer.on(FETCH, contact)
  consumer.on(GROUP_JOIN, ({ payload }) => {
    joined = true
    contact()
    const assigned = new Set(payload.memberAssignment[topic] ?? [])
    logger.info({ partitions: [...assigned] }, 'joined the consumer group')
    options.onAssigned(assigned)
  })
  consumer.on(CRASH, ({ payload }) => {
    left()
    logger.error({ err: payload.error, restart: payload.restart }, 'consumer crashed')
    if (!payload.restart) options.onFatalError(payload.error)
  })
  consumer.on(STOP, left)
  consumer.on(DISCONNECT, left)

  return {
    /** In the group and heard from the broker within a session timeout. */
    inGroup: () => joined && Date.now() - lastContact <= sessionTimeoutMs,
    left,
  }
}
