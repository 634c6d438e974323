import { categoryTokens, normalizeKey } from './detection.js'

/**
 * Returns the configured category that makes a vehicle suspicious, or `null`.
 * `SUSPICIOUS_VEHICLE` is a comma-separated list; a detection matches when any token of its
 * category (split on `,`, trimmed, case-insensitive) equals a listed one: `"SUV, Pickup"` and
 * `"suv"` match `SUV`, `"Pickup"` does not.
 */
export type SuspiciousRule = (category: string) => string | null

export function parseSuspiciousList(list: string): string[] {
  return [...new Set(categoryTokens(list))]
}

export function createSuspiciousRule(list: string | readonly string[]): SuspiciousRule {
  const listed = new Map<string, string>()
  const entries = typeof list === 'string' ? list.split(',') : list
  for (const entry of entries) {
    const key = normalizeKey(entry)
    if (key) listed.set(key, entry.trim())
  }
  return (category) => {
    for (const token of categoryTokens(category)) {
      const match = listed.get(token)
      if (match !== undefined) return match
    }
    return null
  }
}
