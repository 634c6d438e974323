import { type VisibleAlert, visibleToAll } from '@intellisite/alert-rules'
import { type Alert, alertSchema, categoryTokens, normalizeKey } from '@intellisite/detections-store'
import type { Position } from './resume-token.js'
import { alertFrame } from './sse-frames.js'

/** What the make and category filters look at: lower-cased make and category tokens. */
export interface FilterKeys {
  readonly makeKey: string
  readonly categoryKeys: readonly string[]
}

/** One alert as the broadcaster holds it: parsed once, framed once per way readers see it. */
export interface AlertEntry extends FilterKeys {
  readonly partition: number
  readonly offset: number
  /** As consumed, owners of private rules included: never sent as it is (see `entryFrame`). */
  readonly alert: Alert
  /** The consumer position right after this alert; encoded as its frames' `id`. */
  readonly position: Position
  /**
   * Every reader who gets this alert sees it alike (it matched shared rules only, the common
   * case): one frame serves them all, and chunks of such entries are shared by filter alone.
   */
  readonly sharedByAll: boolean
  /**
   * Frames made so far, by `entryFrame`: the one frame of an entry shared by all, or one frame
   * per set of visible rules (the alert as one group of readers sees it).
   */
  frames: Buffer | Map<string, Buffer> | undefined
}

export function parseAlert(value: Buffer | null): Alert | null {
  if (!value) return null
  try {
    const parsed = alertSchema.safeParse(JSON.parse(value.toString('utf8')))
    return parsed.success ? parsed.data : null
  } catch {
    return null
  }
}

export function filterKeys(alert: Alert): FilterKeys {
  return { makeKey: normalizeKey(alert.make), categoryKeys: categoryTokens(alert.category) }
}

export function createAlertEntry(
  partition: number,
  offset: number,
  alert: Alert,
  position: Position,
): AlertEntry {
  return {
    partition,
    offset,
    alert,
    ...filterKeys(alert),
    position,
    sharedByAll: visibleToAll(alert),
    frames: undefined,
  }
}

/**
 * The visible rules identify the alert as a reader sees it: its reason and rule list follow from
 * them. Ids are length-prefixed so that no two sets share a key whatever the ids hold.
 */
export function visibleRulesKey(alert: VisibleAlert): string {
  let key = ''
  for (const rule of alert.rules) key += `${rule.id.length}:${rule.id}`
  return key
}

/**
 * The frame of `entry` (id: its shared position) for a reader who sees it as `visible`, made once
 * per way of seeing it and kept on the entry, so the window's replays reuse it too.
 */
export function entryFrame(entry: AlertEntry, visible: VisibleAlert): Buffer {
  if (entry.sharedByAll) {
    if (entry.frames instanceof Buffer) return entry.frames
    const frame = alertFrame(entry.position, visible)
    entry.frames = frame
    return frame
  }
  const byRules = entry.frames instanceof Map ? entry.frames : new Map<string, Buffer>()
  entry.frames = byRules
  const key = visibleRulesKey(visible)
  let frame = byRules.get(key)
  if (frame === undefined) {
    frame = alertFrame(entry.position, visible)
    byRules.set(key, frame)
  }
  return frame
}

export function samePosition(a: Position, b: Position): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
