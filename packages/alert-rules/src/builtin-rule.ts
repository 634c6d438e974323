import { categoryTokens } from '@intellisite/detections-store'
import { BUILTIN_RULE_ID, BUILTIN_RULE_NAME, type Rule } from './rule.js'

/**
 * The built-in shared rule that `SUSPICIOUS_VEHICLE` (a comma-separated list of categories)
 * configures: a detection matches when any token of its category equals a listed one,
 * case-insensitively. Its version is 1: it changes only with the configuration, at a restart.
 * An empty list disables it.
 */
export function builtinRule(suspiciousVehicle: string | readonly string[]): Rule {
  const listed = typeof suspiciousVehicle === 'string' ? suspiciousVehicle.split(',') : suspiciousVehicle
  // Keep the configured spelling: it is what the alert's `reason` has always said.
  const seen = new Set<string>()
  const category: string[] = []
  for (const entry of listed) {
    const spelled = entry.trim()
    for (const token of categoryTokens(spelled)) {
      if (seen.has(token)) continue
      seen.add(token)
      category.push(spelled.includes(',') ? token : spelled)
    }
  }
  return {
    id: BUILTIN_RULE_ID,
    version: 1,
    name: BUILTIN_RULE_NAME,
    owner: null,
    scope: 'shared',
    enabled: category.length > 0,
    watchlist: false,
    match: category.length > 0 ? { category } : {},
    entries: [],
  }
}
