import type { Alert, AlertRule } from '@intellisite/detections-store'
import { BUILTIN_RULE_ID, BUILTIN_RULE_NAME } from './rule.js'
import { ruleReason } from './rule-index.js'

/** A rule as an alert shows it to a reader: no owner. */
export type VisibleAlertRule = Omit<AlertRule, 'owner'>
export type VisibleAlert = Omit<Alert, 'rules'> & { rules: VisibleAlertRule[] }

/** Who reads an alert: a user id (a JWT's `sub`, a webhook's owner). */
export interface AlertReader {
  userId: string
}

/**
 * Alerts written before rules existed name no rule: the built-in rule raised them, and every
 * reader has always seen them. Its version then is unknown; 1 is the built-in rule's only one.
 */
const LEGACY_RULES: readonly AlertRule[] = [
  { id: BUILTIN_RULE_ID, version: 1, name: BUILTIN_RULE_NAME, scope: 'shared' },
]

/** A rule is visible to a reader when it is shared or the reader owns it. */
export function canSee(rule: AlertRule, reader: AlertReader): boolean {
  return rule.scope === 'shared' || rule.owner === reader.userId
}

/**
 * The one decision of who sees an alert, applied wherever an alert leaves the system (live
 * stream, replay, webhooks, dashboard): the alert as `reader` may see it, or null when none of
 * the rules it matched is visible to them. `onlyRules`, when given, keeps only alerts that
 * matched one of those rules (visible ones). The alert then lists only the visible rules,
 * without owners, and its reason never names a rule the reader cannot see.
 */
export function alertForReader(
  alert: Alert,
  reader: AlertReader,
  onlyRules?: ReadonlySet<string>,
): VisibleAlert | null {
  const matched = alert.rules ?? LEGACY_RULES
  const visible: VisibleAlertRule[] = []
  let selected = onlyRules === undefined
  for (const rule of matched) {
    if (!canSee(rule, reader)) continue
    visible.push({ id: rule.id, version: rule.version, name: rule.name, scope: rule.scope })
    if (!selected && onlyRules?.has(rule.id)) selected = true
  }
  if (visible.length === 0 || !selected) return null
  // The reason names the first rule matched; when the reader cannot see it, name theirs.
  const first = matched[0]
  const reason = first && canSee(first, reader) ? alert.reason : ruleReason(visible[0]!)
  return { ...alert, reason, rules: visible }
}

/**
 * Whether every reader sees this alert as it is (only shared rules): the common case, which lets
 * a fan-out share one serialised frame among all readers.
 */
export function visibleToAll(alert: Alert): boolean {
  return (alert.rules ?? LEGACY_RULES).every((rule) => rule.scope === 'shared')
}
