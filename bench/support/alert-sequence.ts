// What one SSE client checks when every alert must arrive (bench/alerts-client.ts with
// BENCH_CHECK_PARTITIONS): alerts numbered 1, 2, 3, ... (`benchAlert`'s id `bench-<n>-…`), alert n
// produced to partition `partitionOf(n)`. Kafka orders a partition only, so each partition's
// numbers must arrive as p + 1, p + 1 + P, p + 1 + 2P, ...: a gap, a duplicate or a swap within a
// partition is the first number that breaks that run. What a stream skipped is kept as ranges, so
// that a number arriving below its partition's run is told apart: one it skipped comes late (out
// of order), any other comes again (a duplicate). Memory per stream grows with its holes only (none
// while all is well), for 1,000s of streams.

const ALERT_ID = Buffer.from('"id":"bench-')
const EVENT_END = Buffer.from('\n\n')

export const partitionOf = (seq: number, partitions: number) => (seq - 1) % partitions

export interface SequenceResult {
  received: number
  /** Alerts that broke their partition's run (each a gap, duplicate or swap). */
  wrong: number
  /** The first of them, as `<partition>: expected <n>, got <m>`. */
  firstWrong?: string
  /** Alerts received a second time (or more). */
  duplicates: number
  /** Alerts that came after a later one of their partition. */
  outOfOrder: number
}

export function createSequenceCheck(partitions: number) {
  const next = Array.from({ length: partitions }, (_, p) => p + 1)
  /** Per partition, the runs of numbers skipped and not received since: [first, last]. */
  const holes = Array.from({ length: partitions }, () => [] as [number, number][])
  const result: SequenceResult = { received: 0, wrong: 0, duplicates: 0, outOfOrder: 0 }
  let pending: Buffer | undefined

  /** `seq`, below its partition's run: a hole's number (now filled) or one received before. */
  function late(seq: number, p: number): void {
    const list = holes[p]!
    const at = list.findIndex(([first, last]) => first <= seq && seq <= last)
    if (at < 0) {
      result.duplicates++
      return
    }
    result.outOfOrder++
    const [first, last] = list[at]!
    const rest: [number, number][] = []
    if (first < seq) rest.push([first, seq - partitions])
    if (seq < last) rest.push([seq + partitions, last])
    list.splice(at, 1, ...rest)
  }

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
      if (seq > next[p]!) {
        holes[p]!.push([next[p]!, seq - partitions])
        next[p] = seq + partitions
      } else late(seq, p)
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

/**
 * Every stream's results as one, against the `produced` alerts numbered 1 to `produced`: the
 * fewest and most alerts a stream got, every wrong one by kind (alerts a stream never got, got
 * again, got after a later one), and the streams that got every alert once, in order.
 */
export function mergeSequences(results: SequenceResult[], produced: number) {
  const sum = (of: (r: SequenceResult) => number) => results.reduce((a, r) => a + of(r), 0)
  return {
    streams: results.length,
    minReceived: Math.min(...results.map((r) => r.received)),
    maxReceived: Math.max(...results.map((r) => r.received)),
    wrong: sum((r) => r.wrong),
    firstWrong: results.find((r) => r.firstWrong)?.firstWrong,
    missing: sum((r) => Math.max(0, produced - (r.received - r.duplicates))),
    duplicates: sum((r) => r.duplicates),
    outOfOrder: sum((r) => r.outOfOrder),
    complete: results.filter((r) => r.received === produced && r.wrong === 0).length,
  }
}

export type MergedSequences = ReturnType<typeof mergeSequences>
