import { z } from 'zod'

const isoDateTime = z.iso.datetime({ offset: true })

/**
 * `since` is epoch milliseconds or an ISO-8601 date-time with a zone; returns epoch ms or null.
 * A time before 1970 means the same as 1970, from the oldest alert kept: Kafka looks offsets up
 * by non-negative timestamps only (negative ones name the log's ends).
 */
export function parseSince(value: string): number | null {
  if (/^\d{1,15}$/.test(value)) return Number(value)
  if (!isoDateTime.safeParse(value).success) return null
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? null : Math.max(0, ms)
}
