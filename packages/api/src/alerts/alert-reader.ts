import { alertForReader, type VisibleAlert } from '@intellisite/alert-rules'
import { type Alert, categoryTokens, normalizeKey } from '@intellisite/detections-store'
import { type AlertEntry, entryFrame, type FilterKeys, samePosition } from './alert-entry.js'
import type { Position } from './resume-token.js'
import { alertFrame } from './sse-frames.js'

/** The most rule ids one stream may filter on, and the longest id (a rule id's own bound). */
export const MAX_RULE_FILTER = 50
export const MAX_RULE_ID_LENGTH = 64

/** What a stream asked for: make, category and rule filters. */
export interface AlertSelection {
  /** The make and category filters; null when there are none. */
  matches: ((keys: FilterKeys) => boolean) | null
  /** Only alerts that matched one of these rules (among those the reader may see). */
  rules: ReadonlySet<string> | undefined
  /** Equal for streams that select alike: they share frames and chunks of what all may see. */
  key: string
}

/** `rule` as the query gives it: repeated, comma-separated, or both. Blank items are ignored. */
export function ruleIds(rule: string | readonly string[] | undefined): string[] {
  if (rule === undefined) return []
  const values = typeof rule === 'string' ? [rule] : rule
  return values.flatMap((value) => value.split(',').map((id) => id.trim())).filter(Boolean)
}

/**
 * `make` and `category` are comma-separated lists matched case-insensitively; a category matches
 * when any token of the alert's category equals a listed one (`SUV` matches `"Wagon, SUV"`), like
 * the built-in rule. `rule` ids select alerts that matched one of them; an id the reader cannot
 * see (someone else's private rule) or that does not exist simply matches nothing, so the filter
 * tells nobody which rules exist.
 */
export function createAlertSelection(options: {
  make?: string
  category?: string
  rule?: string | readonly string[]
}): AlertSelection {
  const makes = new Set((options.make ?? '').split(',').map(normalizeKey).filter(Boolean))
  const categories = new Set(options.category ? categoryTokens(options.category) : [])
  const rules = new Set(ruleIds(options.rule))
  const sorted = (set: Set<string>) => [...set].sort().join(',')
  // Ids hold no comma (the parameter is split on commas), so the joined lists are unambiguous.
  const key = `${sorted(makes)}|${sorted(categories)}|${sorted(rules)}`
  return {
    key: key === '||' ? '' : key,
    rules: rules.size > 0 ? rules : undefined,
    matches:
      makes.size === 0 && categories.size === 0
        ? null
        : (keys) =>
            (makes.size === 0 || makes.has(keys.makeKey)) &&
            (categories.size === 0 || keys.categoryKeys.some((token) => categories.has(token))),
  }
}

/**
 * One stream's reader: who reads (a JWT's `sub`) and what they selected. Every path by which an
 * alert reaches a stream (live fan-out, alerts held while catching up, replay from the window or
 * from Kafka) goes through `view`, i.e. `alertForReader`: an alert none of whose rules the reader
 * may see never reaches them, and one they may see lists only the rules visible to them.
 *
 * Visibility is decided from the rules the alert carries, as they were when it was raised: after
 * a rule is deleted (or made private) no new alert names it, but alerts already raised keep it,
 * for its owner only when it was private, in the window and on the topic alike.
 */
export interface StreamReader {
  readonly userId: string
  /** The selection's key: see `AlertSelection.key`. */
  readonly filterKey: string
  /** The alert as this reader sees it, or null: not theirs, or not selected. */
  view(alert: Alert, keys: FilterKeys): VisibleAlert | null
  /** The frame of a consumed entry (its shared id) for this reader, or null. */
  frame(entry: AlertEntry): Buffer | null
  /**
   * The same with the id `position`, where this stream stands after the entry: the shared frame
   * when that is the entry's own position (the usual case), else one made for this stream (after
   * a restart, or a token from a replica that consumed in another order).
   */
  frameAt(entry: AlertEntry, position: Position): Buffer | null
  /**
   * The frames of `entries` for a stream standing at `position` (advanced in place): each entry at
   * or past it moves it, whether this reader gets the entry or not, and a frame's id is where the
   * stream then stands. The one place a resuming stream's ids are made: alerts held while
   * catching up, and replays from the window or from Kafka.
   */
  framesFrom(entries: Iterable<AlertEntry>, position: number[]): Buffer[]
}

export function createStreamReader(userId: string, selection: AlertSelection): StreamReader {
  const reader = { userId }
  const { matches, rules } = selection
  const view = (alert: Alert, keys: FilterKeys) =>
    matches && !matches(keys) ? null : alertForReader(alert, reader, rules)
  const frameAt = (entry: AlertEntry, position: Position) => {
    const visible = view(entry.alert, entry)
    if (visible === null) return null
    return samePosition(position, entry.position) ? entryFrame(entry, visible) : alertFrame(position, visible)
  }
  return {
    userId,
    filterKey: selection.key,
    view,
    frame(entry) {
      const visible = view(entry.alert, entry)
      return visible === null ? null : entryFrame(entry, visible)
    },
    frameAt,
    framesFrom(entries, position) {
      const frames: Buffer[] = []
      for (const entry of entries) {
        if (entry.offset < (position[entry.partition] ?? 0)) continue
        position[entry.partition] = entry.offset + 1
        const frame = frameAt(entry, position)
        if (frame) frames.push(frame)
      }
      return frames
    },
  }
}
