import type { AlertEntry } from './alert-entry.js'
import type { Position } from './resume-token.js'

/**
 * The most recent alerts in consumption order (a ring buffer), for replays that do not need Kafka
 * and for de-duplication by alert id. `base[p]` is the first offset of partition p the window
 * still fully holds: everything at or after it that the consumer has read is in the window.
 */
export interface AlertsWindow {
  readonly size: number
  /** Sets where the window starts for a partition (consumer start offset). */
  startPartition(partition: number, offset: number): void
  has(alertId: string): boolean
  push(entry: AlertEntry): void
  /** True when every alert at or after `position` (up to the consumer position) is in the window. */
  covers(position: Position): boolean
  /** Entries at or after `position`, in consumption order (offsets grow within a partition). */
  after(position: Position): AlertEntry[]
}

export function createAlertsWindow(capacity: number): AlertsWindow {
  const ring: (AlertEntry | undefined)[] = new Array(capacity)
  const ids = new Set<string>()
  const base: number[] = []
  let head = 0
  let size = 0

  return {
    get size() {
      return size
    },
    startPartition(partition, offset) {
      base[partition] = offset
    },
    has: (alertId) => ids.has(alertId),
    push(entry) {
      if (capacity === 0) {
        base[entry.partition] = entry.offset + 1
        return
      }
      const slot = (head + size) % capacity
      if (size === capacity) {
        const evicted = ring[head]!
        ids.delete(evicted.alert.id)
        base[evicted.partition] = Math.max(base[evicted.partition] ?? 0, evicted.offset + 1)
        head = (head + 1) % capacity
      } else size++
      ring[slot] = entry
      ids.add(entry.alert.id)
    },
    covers(position) {
      for (let partition = 0; partition < base.length; partition++) {
        const start = base[partition]
        if (start === undefined) return false
        if ((position[partition] ?? 0) < start) return false
      }
      return base.length > 0
    },
    after(position) {
      // From the newest back: a partition's offsets only grow in the window, so once an entry of
      // a partition is below the position, so are all its older ones. A resume a few seconds
      // behind reads a few seconds of the window, not all of it.
      const out: AlertEntry[] = []
      const passed = new Set<number>()
      for (let i = size - 1; i >= 0 && passed.size < base.length; i--) {
        const entry = ring[(head + i) % capacity]!
        if (passed.has(entry.partition)) continue
        if (entry.offset >= (position[entry.partition] ?? 0)) out.push(entry)
        else passed.add(entry.partition)
      }
      return out.reverse()
    },
  }
}
