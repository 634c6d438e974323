import { z } from 'zod'

const isoDateTime = z.iso.datetime({ offset: true })

/** `since` is epoch milliseconds or an ISO-8601 date-time with a zone; returns epoch ms or null. */
export function parseSince(value: string): number | null {
  if (/^\d{1,15}$/.test(value)) return Number(value)
  if (!isoDateTime.safeParse(value).success) return null
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? null : ms
}
