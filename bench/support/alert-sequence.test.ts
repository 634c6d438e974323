// The per-stream check the replica benchmarks and test/e2e/replicas.test.ts rely on to say that
// every client got every alert once, in partition order: each kind of fault is told apart.
import { expect, it } from 'vitest'
import { createSequenceCheck, mergeSequences } from './alert-sequence.js'

const PARTITIONS = 3

/** A stream that receives `seqs` as SSE events, in that order, split across reads. */
function stream(seqs: number[]) {
  const check = createSequenceCheck(PARTITIONS)
  const body = seqs.map((n) => `id: t${n}\ndata: {"id":"bench-${n}-uuid","model":"t1"}\n\n`).join('')
  for (let at = 0; at < body.length; at += 7) check.read(Buffer.from(body.slice(at, at + 7)))
  return check.result()
}

const inOrder = [1, 2, 3, 4, 5, 6, 7, 8, 9]

it('an in-order stream, interleaved across partitions as Kafka may deliver them, is whole', () => {
  const result = stream([2, 1, 3, 5, 4, 6, 7, 9, 8])
  expect(result).toEqual({ received: 9, wrong: 0, duplicates: 0, outOfOrder: 0 })
  expect(mergeSequences([result], 9)).toMatchObject({ missing: 0, complete: 1 })
})

it('tells a gap, a duplicate and a swap within a partition apart', () => {
  // Partition 0 holds 1, 4, 7: 4 never comes.
  const gap = stream([1, 2, 3, 5, 6, 7, 8, 9])
  expect(gap).toMatchObject({ received: 8, wrong: 1, duplicates: 0, outOfOrder: 0 })
  expect(gap.firstWrong).toBe('0: expected 4, got 7')
  // 5 twice (a replay that starts too early).
  const duplicate = stream([...inOrder.slice(0, 6), 5, ...inOrder.slice(6)])
  expect(duplicate).toMatchObject({ received: 10, wrong: 1, duplicates: 1, outOfOrder: 0 })
  // 7 before 4: both break the run, 4 is late, nothing is missing.
  const swap = stream([1, 2, 3, 5, 6, 7, 4, 8, 9])
  expect(swap).toMatchObject({ received: 9, wrong: 2, duplicates: 0, outOfOrder: 1 })
  // A hole (4, 7, 10) filled from its middle, then at both ends, then a number of it again.
  const hole = stream([1, 13, 7, 4, 10, 7])
  expect(hole).toMatchObject({ received: 6, wrong: 5, duplicates: 1, outOfOrder: 3 })

  expect(mergeSequences([gap, duplicate, swap, stream(inOrder)], 9)).toEqual({
    streams: 4,
    minReceived: 8,
    maxReceived: 10,
    wrong: 4,
    firstWrong: '0: expected 4, got 7',
    missing: 1,
    duplicates: 1,
    outOfOrder: 1,
    complete: 1,
  })
})

it('an event cut short by a closed stream does not count', () => {
  const check = createSequenceCheck(PARTITIONS)
  check.read(Buffer.from('id: t1\ndata: {"id":"bench-1-uuid"}\n\nid: t2\ndata: {"id":"bench-2-'))
  check.closed()
  check.read(Buffer.from('id: t2\ndata: {"id":"bench-2-uuid"}\n\n'))
  expect(check.result()).toEqual({ received: 2, wrong: 0, duplicates: 0, outOfOrder: 0 })
})
