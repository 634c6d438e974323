import { describe, expect, it } from 'vitest'
import type { AlertEntry } from '../../src/alerts/alert-entry.js'
import { createAlertsWindow } from '../../src/alerts/alerts-window.js'

/** Only what the window reads of an entry. */
function entry(partition: number, offset: number): AlertEntry {
  return { partition, offset, alert: { id: `${partition}-${offset}` } } as AlertEntry
}

/** A seeded stream of entries over `partitions`, interleaved as a consumer reads them. */
function consumed(count: number, partitions: number, seed: number): AlertEntry[] {
  let state = seed
  const random = () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31
    return state / 2 ** 31
  }
  const next = new Array<number>(partitions).fill(0)
  return Array.from({ length: count }, () => {
    const partition = Math.floor(random() * partitions)
    next[partition]! += 1 + Math.floor(random() * 3) // gaps: compacted or filtered offsets
    return entry(partition, next[partition]!)
  })
}

describe('alerts window', () => {
  it('answers after(position) as a filter over everything it holds would, in consumption order', () => {
    for (const [count, capacity, partitions] of [
      [50, 100, 3],
      [500, 100, 3],
      [300, 64, 1],
      [1_000, 250, 6],
    ] as const) {
      const window = createAlertsWindow(capacity)
      for (let p = 0; p < partitions; p++) window.startPartition(p, 0)
      const entries = consumed(count, partitions, count + capacity)
      for (const e of entries) window.push(e)
      const held = entries.slice(-capacity)
      const positions = [
        [],
        new Array(partitions).fill(0),
        held.map((e) => e.offset).slice(0, partitions),
        ...[0.1, 0.5, 0.9, 1].map((share) => {
          const at = held[Math.min(held.length - 1, Math.floor(held.length * share))]!
          return Array.from({ length: partitions }, (_, p) =>
            p === at.partition ? at.offset : at.offset / 2,
          )
        }),
        new Array(partitions).fill(Number.MAX_SAFE_INTEGER),
      ]
      for (const position of positions) {
        const expected = held.filter((e) => e.offset >= (position[e.partition] ?? 0))
        expect(window.after(position), JSON.stringify({ count, capacity, position })).toEqual(expected)
      }
    }
  })
})
