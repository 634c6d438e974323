import { type Alert, alertSchema, categoryTokens, normalizeKey } from '@intellisite/detections-store'
import { encodeResumeToken, type Position } from './resume-token.js'
import { sseEvent } from './sse-frames.js'

/** One alert as the broadcaster holds it: parsed once, framed once, shared by every client. */
export interface AlertEntry {
  readonly partition: number
  readonly offset: number
  readonly alert: Alert
  /** Lower-cased make and category tokens, for filters. */
  readonly makeKey: string
  readonly categoryKeys: readonly string[]
  /** The consumer position right after this alert; encoded as the frame's `id`. */
  readonly position: Position
  /** The complete SSE frame (`id`, `event`, `data`), serialised once for every client. */
  readonly frame: Buffer
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

export function alertFrame(token: string, alert: Alert): string {
  return sseEvent('alert', JSON.stringify(alert), token)
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
    makeKey: normalizeKey(alert.make),
    categoryKeys: categoryTokens(alert.category),
    position,
    frame: Buffer.from(alertFrame(encodeResumeToken(position), alert)),
  }
}

export function samePosition(a: Position, b: Position): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export type AlertFilter = (entry: Pick<AlertEntry, 'makeKey' | 'categoryKeys'>) => boolean

/**
 * `make` and `category` are comma-separated lists matched case-insensitively; a category matches
 * when any token of the alert's category equals a listed one (`SUV` matches `"Wagon, SUV"`), like
 * the suspicious rule. Returns null when there is nothing to filter.
 */
export function createAlertFilter(options: { make?: string; category?: string }): {
  filter: AlertFilter | null
  key: string
} {
  const makes = options.make ? new Set(options.make.split(',').map(normalizeKey).filter(Boolean)) : null
  const categories = options.category ? new Set(categoryTokens(options.category)) : null
  const useMakes = makes && makes.size > 0 ? makes : null
  const useCategories = categories && categories.size > 0 ? categories : null
  if (!useMakes && !useCategories) return { filter: null, key: '' }
  const key = `${[...(useMakes ?? [])].sort().join(',')}|${[...(useCategories ?? [])].sort().join(',')}`
  return {
    key,
    filter: (entry) =>
      (!useMakes || useMakes.has(entry.makeKey)) &&
      (!useCategories || entry.categoryKeys.some((token) => useCategories.has(token))),
  }
}
