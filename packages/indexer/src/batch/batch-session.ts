import type { EachBatchPayload } from 'kafkajs'

/** The batch's side of the consumer group while it is stored and delivered. */
export interface BatchSession {
  /** Beats for the group now. Never rejects: a failure is kept for {@link BatchSession.groupError}. */
  heartbeat(): Promise<void>
  /** False once the consumer is stopping: the batch is then left uncommitted. */
  isRunning(): boolean
  /** The last group error a heartbeat saw during the batch (e.g. REBALANCE_IN_PROGRESS), if any. */
  groupError(): Error | undefined
}

/**
 * Wraps kafkajs's batch callbacks. A heartbeat's error is kept rather than thrown where it
 * happens (often a timer), so the store and the delivery both find it at their next decision
 * point and end the batch with it: kafkajs then rejoins the group instead of this member working
 * on a partition it may no longer own.
 */
export function createBatchSession(
  consumer: Pick<EachBatchPayload, 'heartbeat' | 'isRunning'>,
  onHeartbeatError: (err: Error) => void = () => {},
): BatchSession {
  let groupError: Error | undefined
  return {
    heartbeat: () =>
      consumer.heartbeat().catch((err: unknown) => {
        groupError = err as Error
        onHeartbeatError(groupError)
      }),
    isRunning: () => consumer.isRunning(),
    groupError: () => groupError,
  }
}

/** Throws the group error a heartbeat saw, if any: the batch ends and kafkajs rejoins the group. */
export function throwGroupError(session: Pick<BatchSession, 'groupError'>): void {
  const err = session.groupError()
  if (err) throw err
}

/**
 * Beats every `intervalMs` until the returned function is called: a slow or retried bulk write
 * must not cost the partition its place in the group.
 */
export function keepAlive(session: Pick<BatchSession, 'heartbeat'>, intervalMs: number): () => void {
  const timer = setInterval(session.heartbeat, intervalMs)
  return () => clearInterval(timer)
}
