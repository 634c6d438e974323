import { setTimeout as sleep } from 'node:timers/promises'
import type { Producer } from 'kafkajs'
import type { Logger } from 'pino'
import { type DetectionGenerator, encodeDetection } from '../detection-generator.js'

export interface DetectionsSenderOptions {
  producer: Producer
  topic: string
  generate: DetectionGenerator
  log: Logger
  /** Detections per second; ignored in burst mode. */
  rate: number
  /** Stop after this many; undefined = until the signal aborts. */
  count: number | undefined
  /** As fast as the broker takes them, `batchSize` records per request, a few requests in flight. */
  burst: boolean
  batchSize: number
  /** 0 disables progress lines. */
  progressIntervalMs: number
}

export interface SendSummary {
  sent: number
  elapsedMs: number
  perSecond: number
}

/** Requests in flight in burst mode: enough to hide the round trip without reordering much. */
const BURST_IN_FLIGHT = 4

/**
 * Sends generated detections until `count` is reached or `signal` aborts, then resolves once every
 * request already handed to Kafka is acknowledged, so a stop never loses an acknowledged count.
 * Records carry no key and no headers, like the challenge's producer; kafkajs spreads keyless
 * records over the partitions.
 */
export async function sendDetections(
  options: DetectionsSenderOptions,
  signal: AbortSignal,
): Promise<SendSummary> {
  const { producer, topic, generate, log, count } = options
  const limit = count ?? Number.POSITIVE_INFINITY
  const started = performance.now()
  let sent = 0
  let queued = 0

  const send = async (n: number): Promise<void> => {
    queued += n
    const messages = Array.from({ length: n }, () => ({ value: encodeDetection(generate()) }))
    await producer.send({ topic, messages })
    sent += n
  }

  let lastSent = 0
  let lastAt = started
  const progress =
    options.progressIntervalMs > 0
      ? setInterval(() => {
          const now = performance.now()
          const recent = ((sent - lastSent) * 1000) / Math.max(1, now - lastAt)
          lastSent = sent
          lastAt = now
          log.info(
            { sent, total: count ?? null, perSecond: Math.round(recent) },
            count
              ? `progress ${sent}/${count} (${Math.round((sent / count) * 100)}%)`
              : `progress ${sent} sent`,
          )
        }, options.progressIntervalMs)
      : undefined
  progress?.unref()

  try {
    if (options.burst) {
      const inFlight = new Set<Promise<void>>()
      let failure: { err: unknown } | undefined
      while (!signal.aborted && !failure && queued < limit) {
        const request: Promise<void> = send(Math.min(options.batchSize, limit - queued))
          .catch((err: unknown) => {
            failure ??= { err }
          })
          .finally(() => inFlight.delete(request))
        inFlight.add(request)
        if (inFlight.size >= BURST_IN_FLIGHT) await Promise.race(inFlight)
      }
      await Promise.all(inFlight)
      if (failure) throw failure.err
    } else {
      // Catch-up pacing: at time t, floor(t * rate) + 1 detections are due. Sending the whole deficit
      // in one request keeps high rates exact despite timer granularity.
      while (!signal.aborted && sent < limit) {
        const elapsed = performance.now() - started
        const due = Math.min(limit, Math.floor((elapsed / 1000) * options.rate) + 1)
        const n = Math.min(due - sent, options.batchSize)
        if (n > 0) {
          await send(n)
          continue
        }
        const nextDueAt = (sent / options.rate) * 1000
        await sleep(Math.max(1, nextDueAt - elapsed), undefined, { signal }).catch(() => {})
      }
    }
  } finally {
    if (progress) clearInterval(progress)
  }

  const elapsedMs = performance.now() - started
  return { sent, elapsedMs, perSecond: sent / Math.max(elapsedMs / 1000, 1e-9) }
}
