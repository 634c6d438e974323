import { retry } from '@intellisite/common'
import { signWebhook } from '@intellisite/webhooks'
import type { Logger } from 'pino'
import type { DisablePolicy, RetryPolicy } from './config.js'
import type { AttemptRecord, ClaimedDelivery, DeliveriesRepository } from './deliveries-repository.js'
import type { NotifierMetrics } from './metrics.js'
import { disableReason, retryDelay } from './retry-policy.js'
import type { SuccessBatch } from './success-batch.js'
import type { AttemptResult, WebhookSender } from './webhook-sender.js'

/** The `webhook-id` of every attempt at a delivery: stable across retries, unique per endpoint and alert. */
export const webhookMessageId = (deliveryId: string) => `msg_${deliveryId}`

/** What one attempt needs: where to send, where to record, and how to hold an endpoint being disabled. */
export interface AttemptContext {
  repository: Pick<DeliveriesRepository, 'recordFailure' | 'disableEndpoint'>
  successes: Pick<SuccessBatch, 'add'>
  sender: Pick<WebhookSender, 'send'>
  retry: RetryPolicy
  disable: DisablePolicy
  leaseMs: number
  logger: Logger
  metrics: NotifierMetrics
  /** Nothing more is sent or taken for the endpoint until as many `unblock`s. */
  block: (endpointId: string) => void
  unblock: (endpointId: string) => void
}

type Persist = <T>(operation: () => Promise<T>) => Promise<T>

/**
 * Sends one signed attempt at `delivery` and records its outcome: delivered, retried later, failed
 * for good, or the endpoint disabled. `sent` is called as soon as the HTTP exchange ends.
 */
export async function attemptDelivery(
  context: AttemptContext,
  delivery: ClaimedDelivery,
  sent: () => void,
): Promise<void> {
  const { sender, metrics } = context
  const attemptedAt = new Date()
  const headers = signWebhook(
    {
      id: webhookMessageId(delivery.id),
      timestampSeconds: Math.floor(attemptedAt.getTime() / 1000),
      body: delivery.body,
    },
    delivery.secrets,
  )
  const result = await sender.send({ url: delivery.url, headers: { ...headers }, body: delivery.body })
  if (result.outcome === 'gone') context.block(delivery.endpointId)
  sent()
  metrics.recordAttempt(result.outcome, result.latencyMs)
  const record: AttemptRecord = {
    deliveryId: delivery.id,
    endpointId: delivery.endpointId,
    attemptedAt,
    status: result.status,
    latencyMs: result.latencyMs,
    error: result.error,
  }
  // Recording is retried for a while; if PostgreSQL stays away the lease ends and the delivery
  // is sent again, with the same webhook-id (at least once, never lost).
  const persist: Persist = (operation) =>
    retry(operation, { initialMs: 200, maxMs: 2_000, withinMs: context.leaseMs / 2 })
  if (result.outcome === 'success') {
    await context.successes.add(record, persist)
    metrics.deliveries.inc({ outcome: 'delivered' })
    return
  }
  await recordFailure(context, delivery, result, record, persist)
}

async function recordFailure(
  context: AttemptContext,
  delivery: ClaimedDelivery,
  result: AttemptResult,
  record: AttemptRecord,
  persist: Persist,
): Promise<void> {
  const { repository, metrics } = context
  const made = delivery.attempts + 1
  // 410 Gone: the receiver says this endpoint is no more. The delivery ends and so does the endpoint.
  const delay = result.outcome === 'gone' ? null : retryDelay(made, context.retry)
  const nextAttemptAt = delay === null ? null : new Date(Date.now() + delay)
  const gone = result.outcome === 'gone'
  let blocking = gone
  try {
    const run = await persist(() => repository.recordFailure(record, nextAttemptAt))
    if (nextAttemptAt === null) metrics.deliveries.inc({ outcome: 'failed' })
    const log = context.logger.child({
      deliveryId: delivery.id,
      endpointId: delivery.endpointId,
      attempts: made,
    })
    log.info(
      { outcome: result.outcome, status: result.status, error: result.error, nextAttemptAt },
      'delivery attempt failed',
    )
    // null: the endpoint is gone or already disabled.
    if (run === null) return
    const reason = gone
      ? 'the endpoint answered 410 Gone'
      : disableReason({ ...run, now: new Date() }, context.disable, result.error ?? result.outcome)
    if (reason === null) return
    if (!blocking) {
      context.block(delivery.endpointId)
      blocking = true
    }
    if (await persist(() => repository.disableEndpoint(delivery.endpointId, reason))) {
      metrics.endpointsDisabledTotal.inc({ cause: gone ? 'gone' : 'failing' })
      log.warn({ reason }, 'endpoint disabled')
    }
  } finally {
    if (blocking) context.unblock(delivery.endpointId)
  }
}
