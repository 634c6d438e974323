import type { ClaimedDelivery } from './deliveries-repository.js'

/**
 * Up to one round of deliveries per endpoint waits here beside the round being sent, so a freed
 * slot is refilled without a round trip to PostgreSQL.
 */
const ROUNDS_HELD = 2

export interface Concurrency {
  total: number
  perEndpoint: number
}

/**
 * The deliveries this process holds, per endpoint: those being sent (never more than
 * `perEndpoint` to one endpoint nor `total` in all) and those taken and leased, waiting for a slot.
 * Bookkeeping only: what to take, send and hand back is the worker's to do.
 */
export function createEndpointLimiter(concurrency: Concurrency) {
  /** HTTP exchanges in progress, per endpoint. */
  const sending = new Map<string, number>()
  /** Deliveries taken and leased, waiting for a free slot of their endpoint. */
  const waiting = new Map<string, ClaimedDelivery[]>()
  /**
   * Endpoints being disabled (a 410, or failing for too long), by the attempts that are disabling
   * them: nothing more is sent or taken for them meanwhile, and what waited goes back only once
   * PostgreSQL says disabled, so no other claim takes it in between.
   */
  const blocked = new Map<string, number>()
  const maxHeldPerEndpoint = ROUNDS_HELD * concurrency.perEndpoint
  const totals = { sending: 0, waiting: 0 }

  function mayStart(endpointId: string): boolean {
    return (sending.get(endpointId) ?? 0) < concurrency.perEndpoint && totals.sending < concurrency.total
  }

  /** Calls `start` for what waits, as far as the endpoints' and the process's limits allow. */
  function startWaiting(start: (delivery: ClaimedDelivery) => void): void {
    for (const [endpointId, queue] of waiting) {
      if (blocked.has(endpointId)) continue
      while (queue.length > 0 && mayStart(endpointId)) {
        totals.waiting--
        increment(sending, endpointId)
        totals.sending++
        start(queue.shift()!)
      }
      if (queue.length === 0) waiting.delete(endpointId)
      if (totals.sending >= concurrency.total) return
    }
  }

  function takeWaiting(endpointId: string): ClaimedDelivery[] {
    const queue = waiting.get(endpointId) ?? []
    waiting.delete(endpointId)
    totals.waiting -= queue.length
    return queue
  }

  return {
    maxHeldPerEndpoint,
    /** How many more deliveries this process can take now. */
    room: () => ROUNDS_HELD * concurrency.total - totals.sending - totals.waiting,
    held: () => heldPerEndpoint(sending, waiting, blocked.keys(), maxHeldPerEndpoint),
    enqueue: (deliveries: readonly ClaimedDelivery[]) => enqueue(waiting, totals, deliveries),
    startWaiting,
    /** The endpoint's HTTP exchange ended: its slot is free. */
    free(endpointId: string): void {
      totals.sending--
      decrement(sending, endpointId)
    },
    inFlight: () => totals.sending,
    waitsFor: (endpointId: string) => waiting.has(endpointId),
    block: (endpointId: string) => increment(blocked, endpointId),
    /** Ends one block; once none is left, returns what waited for the endpoint, to hand back. */
    unblock: (endpointId: string) => (decrement(blocked, endpointId) > 0 ? [] : takeWaiting(endpointId)),
    /** Empties every queue and returns what waited. */
    drain: () => [...waiting.keys()].flatMap((endpointId) => takeWaiting(endpointId)),
  }
}

export type EndpointLimiter = ReturnType<typeof createEndpointLimiter>

/** What this process holds per endpoint (sending or waiting), so a claim takes no more than it can use soon. */
function heldPerEndpoint(
  sending: ReadonlyMap<string, number>,
  waiting: ReadonlyMap<string, readonly ClaimedDelivery[]>,
  blocked: Iterable<string>,
  full: number,
): Map<string, number> {
  const counts = new Map(sending)
  for (const [endpointId, queue] of waiting)
    counts.set(endpointId, (counts.get(endpointId) ?? 0) + queue.length)
  for (const endpointId of blocked) counts.set(endpointId, full)
  return counts
}

function enqueue(
  waiting: Map<string, ClaimedDelivery[]>,
  totals: { waiting: number },
  deliveries: readonly ClaimedDelivery[],
): void {
  for (const delivery of deliveries) {
    const queue = waiting.get(delivery.endpointId)
    if (queue) queue.push(delivery)
    else waiting.set(delivery.endpointId, [delivery])
    totals.waiting++
  }
}

function increment(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1)
}

/** Returns what is left; a count that reaches zero is removed. */
function decrement(counts: Map<string, number>, key: string): number {
  const left = (counts.get(key) ?? 1) - 1
  if (left > 0) counts.set(key, left)
  else counts.delete(key)
  return left
}
