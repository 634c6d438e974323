import { backoffDelay, sleep } from '@intellisite/common'
import type { Logger } from 'pino'
import type { DisablePolicy, RetryPolicy } from './config.js'
import type { ClaimedDelivery, DeliveriesRepository } from './deliveries-repository.js'
import { type AttemptContext, attemptDelivery } from './delivery-attempt.js'
import { type Concurrency, createEndpointLimiter, type EndpointLimiter } from './endpoint-limiter.js'
import type { NotifierMetrics } from './metrics.js'
import { createSuccessBatch } from './success-batch.js'
import type { WebhookSender } from './webhook-sender.js'

export { webhookMessageId } from './delivery-attempt.js'

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
  concurrency: Concurrency
  pollIntervalMs: number
  /**
   * How long a taken delivery stays invisible to other notifiers: longer than it can wait for a
   * slot (one attempt) plus its own attempt.
   */
  leaseMs: number
  logger: Logger
  metrics: NotifierMetrics
}

/**
 * Takes due deliveries and sends them, never more than `concurrency.total` at once nor
 * `concurrency.perEndpoint` to one endpoint: a slow or dead endpoint holds its own few slots for
 * up to the attempt timeout while every other endpoint's deliveries go on. Each attempt is
 * recorded, then the next is scheduled (or the delivery fails for good, or the endpoint is
 * disabled).
 */
export function createDeliveryWorker(options: DeliveryWorkerOptions) {
  const { repository } = options
  const limiter = createEndpointLimiter(options.concurrency)
  const poll = createWakeableNap()
  let running = false
  let loop: Promise<void> | undefined
  let stopSignal = new AbortController()
  const dispatcher = createAttemptDispatcher(options, limiter, {
    isRunning: () => running,
    wake: poll.wake,
  })

  async function run(): Promise<void> {
    let claimFailures = 0
    while (running) {
      const room = limiter.room()
      let claimed: ClaimedDelivery[] = []
      if (room > 0) {
        try {
          claimed = await repository.claim({
            limit: room,
            perEndpoint: limiter.maxHeldPerEndpoint,
            busy: limiter.held(),
            leaseMs: options.leaseMs,
          })
          claimFailures = 0
        } catch (err) {
          claimFailures++
          await sleep(reportClaimFailure(err, claimFailures, options), stopSignal.signal)
          continue
        }
        limiter.enqueue(claimed)
        dispatcher.startWaiting()
      }
      // Took all it had room for: look again at once. Otherwise wait for the next poll, or for new
      // deliveries or an endpoint with a free slot and nothing waiting (wake), whichever comes first.
      if (running && (room <= 0 || claimed.length < room)) await poll.nap(options.pollIntervalMs)
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
    wake: poll.wake,
    inFlight: limiter.inFlight,
    /** Takes nothing more and waits for the attempts in flight (each bounded by its timeout) to be recorded. */
    async stop(): Promise<void> {
      running = false
      stopSignal.abort()
      poll.wake()
      await loop
      await dispatcher.stop()
    },
  }
}

export type DeliveryWorker = ReturnType<typeof createDeliveryWorker>

/** Logs a failed claim (only the first while the schema is missing) and returns how long to wait before the next. */
function reportClaimFailure(
  err: unknown,
  failures: number,
  { pollIntervalMs, logger }: Pick<DeliveryWorkerOptions, 'pollIntervalMs' | 'logger'>,
): number {
  const delayMs = backoffDelay(failures, pollIntervalMs, 10_000)
  if ((err as { code?: string }).code !== UNDEFINED_TABLE)
    logger.warn({ err, delayMs }, 'could not take due deliveries; trying again')
  else if (failures === 1)
    logger.info('waiting for the webhooks tables (the API creates them when it starts)')
  return delayMs
}

/**
 * Starts attempts at what waits in `limiter` and keeps them until they are recorded. An endpoint's
 * freed slot takes the next delivery waiting for it, or asks the scheduler for more (`wake`).
 */
function createAttemptDispatcher(
  options: DeliveryWorkerOptions,
  limiter: EndpointLimiter,
  scheduler: { isRunning: () => boolean; wake: () => void },
) {
  const { repository, logger } = options
  /** Every attempt not yet recorded, for a graceful stop. */
  const attempts = new Set<Promise<void>>()
  const context: AttemptContext = {
    ...options,
    successes: createSuccessBatch(repository.recordSuccesses),
    block: limiter.block,
    // An endpoint that is gone or disabled: what waits for it here goes back, undelivered.
    unblock: (endpointId) => void handBack(options, limiter.unblock(endpointId), { endpointId }),
  }

  function startWaiting(): void {
    limiter.startWaiting(start)
  }

  function start(delivery: ClaimedDelivery): void {
    const { endpointId } = delivery
    let holdsSlot = true
    // The endpoint's slot frees when its HTTP exchange ends, before the outcome is recorded: the
    // lease keeps the delivery from being taken again meanwhile, and the endpoint's next delivery
    // need not wait for PostgreSQL.
    const releaseSlot = () => {
      if (!holdsSlot) return
      holdsSlot = false
      limiter.free(endpointId)
      if (!scheduler.isRunning()) return
      startWaiting()
      if (!limiter.waitsFor(endpointId)) scheduler.wake()
    }
    const attempt = attemptDelivery(context, delivery, releaseSlot)
      .catch((err: unknown) =>
        logger.error({ err, deliveryId: delivery.id }, 'delivery attempt failed unexpectedly'),
      )
      .finally(() => {
        attempts.delete(attempt)
        releaseSlot()
      })
    attempts.add(attempt)
  }

  return {
    startWaiting,
    /** Hands back what waits and waits for the attempts in flight. */
    async stop(): Promise<void> {
      await handBack(options, limiter.drain(), {})
      await Promise.allSettled([...attempts])
    },
  }
}

/** Gives deliveries back to PostgreSQL for any notifier to take again, rather than when their lease ends. */
async function handBack(
  { repository, logger }: Pick<DeliveryWorkerOptions, 'repository' | 'logger'>,
  deliveries: readonly ClaimedDelivery[],
  logContext: object,
): Promise<void> {
  if (deliveries.length === 0) return
  await repository
    .release(deliveries.map((delivery) => delivery.id))
    .catch((err: unknown) => logger.warn({ err, ...logContext }, 'could not hand back deliveries'))
}

/** A wait for the next poll that `wake` ends early. */
function createWakeableNap() {
  let wakeUp: (() => void) | undefined
  return {
    nap(ms: number): Promise<void> {
      return new Promise((resolve) => {
        const timer = setTimeout(done, ms)
        function done() {
          clearTimeout(timer)
          wakeUp = undefined
          resolve()
        }
        wakeUp = done
      })
    },
    wake(): void {
      wakeUp?.()
    },
  }
}
