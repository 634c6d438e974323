import { backoffDelay, retry, sleep } from '@intellisite/common'
import { signWebhook } from '@intellisite/webhooks'
import type { Logger } from 'pino'
import type { DisablePolicy, RetryPolicy } from './config.js'
import type { AttemptRecord, ClaimedDelivery, DeliveriesRepository } from './deliveries-repository.js'
import type { NotifierMetrics } from './metrics.js'
import { disableReason, retryDelay } from './retry-policy.js'
import type { AttemptResult, WebhookSender } from './webhook-sender.js'

/** PostgreSQL's undefined_table: the API, which owns the schema, has not migrated it yet. */
const UNDEFINED_TABLE = '42P01'

export interface DeliveryWorkerOptions {
  repository: Pick<
    DeliveriesRepository,
    'claim' | 'release' | 'recordSuccesses' | 'recordFailure' | 'disableEndpoint'
  >
  sender: Pick<WebhookSender, 'send'>
  retry: RetryPolicy
  disable: DisablePolicy
  concurrency: { total: number; perEndpoint: number }
  pollIntervalMs: number
  /**
   * How long a taken delivery stays invisible to other notifiers: longer than it can wait for a
   * slot (one attempt) plus its own attempt.
   */
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
  /** HTTP exchanges in progress, per endpoint. */
  const sending = new Map<string, number>()
  /** Deliveries taken and leased, waiting for a free slot of their endpoint. */
  const ready = new Map<string, ClaimedDelivery[]>()
  /** Every attempt not yet recorded, for a graceful stop. */
  const attempts = new Set<Promise<void>>()
  /**
   * Endpoints being disabled (a 410, or failing for too long), by the attempts that are disabling
   * them: nothing more is sent or taken for them meanwhile, and what waited goes back only once
   * PostgreSQL says disabled, so no other claim takes it in between.
   */
  const blocked = new Map<string, number>()
  let sendingTotal = 0
  let readyTotal = 0
  let running = false
  let loop: Promise<void> | undefined
  let wakeUp: (() => void) | undefined
  let stopSignal = new AbortController()
  const successes = createSuccessBatch(repository.recordSuccesses)

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

  /** What this process holds per endpoint (sending or waiting), so a claim takes no more than it can use soon. */
  function held(): Map<string, number> {
    const counts = new Map(sending)
    for (const [endpointId, queue] of ready)
      counts.set(endpointId, (counts.get(endpointId) ?? 0) + queue.length)
    for (const endpointId of blocked.keys()) counts.set(endpointId, 2 * concurrency.perEndpoint)
    return counts
  }

  async function run(): Promise<void> {
    let claimFailures = 0
    while (running) {
      // Up to one round of deliveries per endpoint waits here beside the round being sent, so a
      // freed slot is refilled without a round trip to PostgreSQL.
      const room = 2 * concurrency.total - sendingTotal - readyTotal
      let claimed: ClaimedDelivery[] = []
      if (room > 0) {
        try {
          claimed = await repository.claim({
            limit: room,
            perEndpoint: 2 * concurrency.perEndpoint,
            busy: held(),
            leaseMs: options.leaseMs,
          })
          claimFailures = 0
        } catch (err) {
          claimFailures++
          const delayMs = backoffDelay(claimFailures, options.pollIntervalMs, 10_000)
          if ((err as { code?: string }).code !== UNDEFINED_TABLE)
            logger.warn({ err, delayMs }, 'could not take due deliveries; trying again')
          else if (claimFailures === 1)
            logger.info('waiting for the webhooks tables (the API creates them when it starts)')
          await sleep(delayMs, stopSignal.signal)
          continue
        }
        for (const delivery of claimed) {
          const queue = ready.get(delivery.endpointId)
          if (queue) queue.push(delivery)
          else ready.set(delivery.endpointId, [delivery])
          readyTotal++
        }
        pump()
      }
      // Took all it had room for: look again at once. Otherwise wait for the next poll, or for new
      // deliveries or an endpoint with a free slot and nothing waiting (wake), whichever comes first.
      if (running && (room <= 0 || claimed.length < room)) await nap(options.pollIntervalMs)
    }
  }

  /** Starts what waits, as far as the endpoints' and the process's limits allow. */
  function pump(): void {
    for (const [endpointId, queue] of ready) {
      if (blocked.has(endpointId)) continue
      while (
        queue.length > 0 &&
        (sending.get(endpointId) ?? 0) < concurrency.perEndpoint &&
        sendingTotal < concurrency.total
      ) {
        readyTotal--
        start(queue.shift()!)
      }
      if (queue.length === 0) ready.delete(endpointId)
      if (sendingTotal >= concurrency.total) return
    }
  }

  function block(endpointId: string): void {
    blocked.set(endpointId, (blocked.get(endpointId) ?? 0) + 1)
  }

  function unblock(endpointId: string): void {
    const left = (blocked.get(endpointId) ?? 1) - 1
    if (left > 0) return void blocked.set(endpointId, left)
    blocked.delete(endpointId)
    dropWaiting(endpointId)
  }

  /** An endpoint that is gone or disabled: what waits for it here goes back, undelivered. */
  function dropWaiting(endpointId: string): void {
    const queue = ready.get(endpointId)
    if (!queue) return
    ready.delete(endpointId)
    readyTotal -= queue.length
    repository
      .release(queue.map((delivery) => delivery.id))
      .catch((err: unknown) => logger.warn({ err, endpointId }, 'could not hand back deliveries'))
  }

  function start(delivery: ClaimedDelivery): void {
    const { endpointId } = delivery
    sending.set(endpointId, (sending.get(endpointId) ?? 0) + 1)
    sendingTotal++
    let holdsSlot = true
    // The endpoint's slot frees when its HTTP exchange ends, before the outcome is recorded: the
    // lease keeps the delivery from being taken again meanwhile, and the endpoint's next delivery
    // need not wait for PostgreSQL.
    const releaseSlot = () => {
      if (!holdsSlot) return
      holdsSlot = false
      sendingTotal--
      const left = (sending.get(endpointId) ?? 1) - 1
      if (left > 0) sending.set(endpointId, left)
      else sending.delete(endpointId)
      if (!running) return
      pump()
      if (!ready.has(endpointId)) wake()
    }
    const attempt = deliver(delivery, releaseSlot)
      .catch((err: unknown) =>
        logger.error({ err, deliveryId: delivery.id }, 'delivery attempt failed unexpectedly'),
      )
      .finally(() => {
        attempts.delete(attempt)
        releaseSlot()
      })
    attempts.add(attempt)
  }

  async function deliver(delivery: ClaimedDelivery, sent: () => void): Promise<void> {
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
    if (result.outcome === 'gone') block(delivery.endpointId)
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
    const persist = <T>(operation: () => Promise<T>) =>
      retry(operation, { initialMs: 200, maxMs: 2_000, withinMs: options.leaseMs / 2 })
    if (result.outcome === 'success') {
      await successes.add(record, persist)
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
    const gone = result.outcome === 'gone'
    let blocking = gone
    try {
      const run = await persist(() => repository.recordFailure(record, nextAttemptAt))
      if (nextAttemptAt === null) metrics.deliveries.inc({ outcome: 'failed' })
      const log = logger.child({ deliveryId: delivery.id, endpointId: delivery.endpointId, attempts: made })
      log.info(
        { outcome: result.outcome, status: result.status, error: result.error, nextAttemptAt },
        'delivery attempt failed',
      )
      // null: the endpoint is gone or already disabled.
      if (run === null) return
      const reason = gone
        ? 'the endpoint answered 410 Gone'
        : disableReason({ ...run, now: new Date() }, options.disable, result.error ?? result.outcome)
      if (reason === null) return
      if (!blocking) {
        block(delivery.endpointId)
        blocking = true
      }
      if (await persist(() => repository.disableEndpoint(delivery.endpointId, reason))) {
        metrics.endpointsDisabledTotal.inc({ cause: gone ? 'gone' : 'failing' })
        log.warn({ reason }, 'endpoint disabled')
      }
    } finally {
      if (blocking) unblock(delivery.endpointId)
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
      return sendingTotal
    },
    /** Takes nothing more and waits for the attempts in flight (each bounded by its timeout) to be recorded. */
    async stop(): Promise<void> {
      running = false
      stopSignal.abort()
      wake()
      await loop
      // What waited here is handed back at once rather than when its lease ends.
      const waiting = [...ready.values()].flat().map((delivery) => delivery.id)
      ready.clear()
      readyTotal = 0
      if (waiting.length > 0)
        await repository
          .release(waiting)
          .catch((err: unknown) => logger.warn({ err }, 'could not hand back deliveries'))
      await Promise.allSettled([...attempts])
    },
  }
}

export type DeliveryWorker = ReturnType<typeof createDeliveryWorker>

/** Successes gathered for a moment (or until there are many) and recorded in one statement. */
const SUCCESS_BATCH = 200
const SUCCESS_DELAY_MS = 5

function createSuccessBatch(write: (attempts: readonly AttemptRecord[]) => Promise<void>) {
  let pending: { record: AttemptRecord; done: () => void; failed: (err: unknown) => void }[] = []
  let timer: NodeJS.Timeout | undefined

  function flush(): void {
    clearTimeout(timer)
    timer = undefined
    const batch = pending
    pending = []
    write(batch.map((p) => p.record)).then(
      () => {
        for (const p of batch) p.done()
      },
      (err: unknown) => {
        for (const p of batch) p.failed(err)
      },
    )
  }

  function once(record: AttemptRecord): Promise<void> {
    return new Promise((done, failed) => {
      pending.push({ record, done, failed })
      if (pending.length >= SUCCESS_BATCH) flush()
      else timer ??= setTimeout(flush, SUCCESS_DELAY_MS)
    })
  }

  return {
    /** Resolves once `record` is written; a failed write is retried for this record alone, as `persist` says. */
    async add(
      record: AttemptRecord,
      persist: (operation: () => Promise<void>) => Promise<void>,
    ): Promise<void> {
      try {
        await once(record)
      } catch {
        await persist(() => write([record]))
      }
    },
  }
}
