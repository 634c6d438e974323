// What one SSE client checks when every alert must arrive (bench/alerts-client.ts with
// BENCH_CHECK_PARTITIONS): alerts numbered 1, 2, 3, ... (`benchAlert`'s id `bench-<n>-…`), alert n
// produced to partition `partitionOf(n)`. Kafka orders a partition only, so each partition's
// numbers must arrive as p + 1, p + 1 + P, p + 1 + 2P, ...: a gap, a duplicate or a swap within a
// partition is the first number that breaks that run. Constant memory per stream, for 1,000s.

const ALERT_ID = Buffer.from('"id":"bench-')
const EVENT_END = Buffer.from('\n\n')

export const partitionOf = (seq: number, partitions: number) => (seq - 1) % partitions

export interface SequenceResult {
  received: number
  /** Alerts that broke their partition's run (each a gap, duplicate or swap). */
  wrong: number
  /** The first of them, as `<partition>: expected <n>, got <m>`. */
  firstWrong?: string
}

export function createSequenceCheck(partitions: number) {
  const next = Array.from({ length: partitions }, (_, p) => p + 1)
  const result: SequenceResult = { received: 0, wrong: 0 }
  let pending: Buffer | undefined

  function event(data: Buffer): void {
    const at = data.indexOf(ALERT_ID)
    if (at < 0) return
    const start = at + ALERT_ID.length
    const seq = Number(data.toString('latin1', start, data.indexOf(45, start)))
    const p = partitionOf(seq, partitions)
    result.received++
    if (seq === next[p]) next[p] = seq + partitions
    else {
      result.wrong++
      result.firstWrong ??= `${p}: expected ${next[p]}, got ${seq}`
      // Count what follows against this one, so that one gap is one wrong alert, not all after it.
      if (seq > next[p]!) next[p] = seq + partitions
    }
  }

  return {
    /** Bytes of the stream's body as they arrive; only complete events count, as in EventSource. */
    read(chunk: Buffer): void {
      const data = pending ? Buffer.concat([pending, chunk]) : chunk
      let from = 0
      for (let end = data.indexOf(EVENT_END); end >= 0; end = data.indexOf(EVENT_END, from)) {
        event(data.subarray(from, end))
        from = end + EVENT_END.length
      }
      pending = from < data.length ? Buffer.from(data.subarray(from)) : undefined
    },
    /** The stream closed: an event cut short is dropped (the resumed stream sends it again). */
    closed(): void {
      pending = undefined
    },
    result: () => result,
  }
}

/** Every stream's results as one: the fewest and most alerts a stream got, and every wrong one. */
export function mergeSequences(results: SequenceResult[]) {
  return {
    streams: results.length,
    minReceived: Math.min(...results.map((r) => r.received)),
    maxReceived: Math.max(...results.map((r) => r.received)),
    wrong: results.reduce((a, r) => a + r.wrong, 0),
    firstWrong: results.find((r) => r.firstWrong)?.firstWrong,
  }
}

export type MergedSequences = ReturnType<typeof mergeSequences>
