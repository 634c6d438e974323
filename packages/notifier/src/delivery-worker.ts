import { backoffDelay, retry, sleep } from '@intellisite/common'
import { signWebhook } from '@intellisite/webhooks'
import type { Logger } from 'pino'
import type { DisablePolicy, RetryPolicy } from './config.js'
import type { AttemptRecord, ClaimedDelivery, DeliveriesRepository } from './deliveries-repository.js'
import type { NotifierMetrics } from './metrics.js'
import { disableReason, retryDelay } from './retry-policy.js'
import type { AttemptResult, WebhookSender } from './webhook-sender.js'

export interface DeliveryWorkerOptions {
  repository: Pick<DeliveriesRepository, 'claim' | 'recordSuccess' | 'recordFailure' | 'disableEndpoint'>
  sender: Pick<WebhookSender, 'send'>
  retry: RetryPolicy
  disable: DisablePolicy
  concurrency: { total: number; perEndpoint: number }
  pollIntervalMs: number
  /** How long a taken delivery stays invisible to other notifiers: longer than an attempt can last. */
  leaseMs: number
  logger: Logger
  metrics: NotifierMetrics
}

/** The `webhook-id` of every attempt at a delivery: stable across retries, unique per endpoint and alert. */
export const webhookMessageId = (deliveryId: string) => `msg_${deliveryId}`

/**
 * Takes due deliveries and sends them, never more than `concurrency.total` at once nor
 * `concurrency.perEndpoint` to one endpoint: a slow or dead endpoint holds its own few slots for
 * up to the attempt timeout while every other endpoint's deliveries go on. Each attempt is
 * recorded, then the next is scheduled (or the delivery fails for good, or the endpoint is
 * disabled).
 */
export function createDeliveryWorker(options: DeliveryWorkerOptions) {
  const { repository, sender, logger, metrics, concurrency } = options
  const busy = new Map<string, number>()
  const attempts = new Set<Promise<void>>()
  let running = false
  let loop: Promise<void> | undefined
  let wakeUp: (() => void) | undefined
  let stopSignal = new AbortController()

  function wake(): void {
    wakeUp?.()
  }

  function nap(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        wakeUp = undefined
        resolve()
      }
      wakeUp = done
    })
  }

  async function run(): Promise<void> {
    let claimFailures = 0
    while (running) {
      const free = concurrency.total - attempts.size
      let claimed: ClaimedDelivery[] = []
      if (free > 0) {
        try {
          claimed = await repository.claim({
            limit: free,
            perEndpoint: concurrency.perEndpoint,
            busy,
            leaseMs: options.leaseMs,
          })
          claimFailures = 0
        } catch (err) {
          claimFailures++
          const delayMs = backoffDelay(claimFailures, options.pollIntervalMs, 10_000)
          logger.warn({ err, delayMs }, 'could not take due deliveries; trying again')
          await sleep(delayMs, stopSignal.signal)
          continue
        }
        for (const delivery of claimed) dispatch(delivery)
      }
      // Every slot filled: wait for one to free. Fewer due than slots: wait for the next poll, or
      // for a slot or new deliveries (wake), whichever comes first.
      if (running && (free === 0 || claimed.length < free)) await nap(options.pollIntervalMs)
    }
  }

  function dispatch(delivery: ClaimedDelivery): void {
    busy.set(delivery.endpointId, (busy.get(delivery.endpointId) ?? 0) + 1)
    const attempt = deliver(delivery)
      .catch((err: unknown) =>
        logger.error({ err, deliveryId: delivery.id }, 'delivery attempt failed unexpectedly'),
      )
      .finally(() => {
        attempts.delete(attempt)
        const left = (busy.get(delivery.endpointId) ?? 1) - 1
        if (left > 0) busy.set(delivery.endpointId, left)
        else busy.delete(delivery.endpointId)
        wake()
      })
    attempts.add(attempt)
  }

  async function deliver(delivery: ClaimedDelivery): Promise<void> {
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
    const persist = <T>(operation: () => Promise<T>) =>
      retry(operation, { initialMs: 200, maxMs: 2_000, withinMs: options.leaseMs / 2 })
    if (result.outcome === 'success') {
      await persist(() => repository.recordSuccess(record))
      metrics.deliveries.inc({ outcome: 'delivered' })
      return
    }
    await recordFailure(delivery, result, record, persist)
  }

  async function recordFailure(
    delivery: ClaimedDelivery,
    result: AttemptResult,
    record: AttemptRecord,
    persist: <T>(operation: () => Promise<T>) => Promise<T>,
  ): Promise<void> {
    const made = delivery.attempts + 1
    // 410 Gone: the receiver says this endpoint is no more. The delivery ends and so does the endpoint.
    const delay = result.outcome === 'gone' ? null : retryDelay(made, options.retry)
    const nextAttemptAt = delay === null ? null : new Date(Date.now() + delay)
    const run = await persist(() => repository.recordFailure(record, nextAttemptAt))
    if (nextAttemptAt === null) metrics.deliveries.inc({ outcome: 'failed' })
    const log = logger.child({ deliveryId: delivery.id, endpointId: delivery.endpointId, attempts: made })
    log.info(
      { outcome: result.outcome, status: result.status, error: result.error, nextAttemptAt },
      'delivery attempt failed',
    )
    if (run === null) return
    const reason =
      result.outcome === 'gone'
        ? 'the endpoint answered 410 Gone'
        : disableReason({ ...run, now: new Date() }, options.disable, result.error ?? result.outcome)
    if (reason === null) return
    if (await persist(() => repository.disableEndpoint(delivery.endpointId, reason))) {
      metrics.endpointsDisabledTotal.inc({ cause: result.outcome === 'gone' ? 'gone' : 'failing' })
      log.warn({ reason }, 'endpoint disabled')
    }
  }

  return {
    start(): void {
      if (running) return
      running = true
      stopSignal = new AbortController()
      loop = run()
    },
    /** New deliveries are due now: look without waiting for the next poll. */
    wake,
    inFlight(): number {
      return attempts.size
    },
    /** Takes nothing more and waits for the attempts in flight (each bounded by its timeout) to be recorded. */
    async stop(): Promise<void> {
      running = false
      stopSignal.abort()
      wake()
      await loop
      await Promise.allSettled([...attempts])
    },
  }
}

export type DeliveryWorker = ReturnType<typeof createDeliveryWorker>
