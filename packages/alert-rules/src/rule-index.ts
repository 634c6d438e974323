import { type AlertRule, categoryTokens, normalizeKey } from '@intellisite/detections-store'
import { BUILTIN_RULE_ID, type Rule } from './rule.js'

/** The fields of a detection that rules look at, case-folded as the detections store keeps them. */
export interface MatchableDetection {
  makeKey: string
  modelKey: string
  categoryTokens: readonly string[]
  year: number
}

export interface RuleMatches {
  /** Every rule matched, the built-in rule first, then by id. */
  rules: AlertRule[]
  /** The alert's `reason`: the built-in rule's, as it has always read, or the first rule's name. */
  reason: string
}

interface CompiledRule {
  readonly ref: AlertRule
  /** Lower-cased listed category token → the spelling configured (the built-in rule's reason). */
  readonly categories: ReadonlyMap<string, string> | null
  readonly makes: ReadonlySet<string> | null
  readonly models: ReadonlySet<string> | null
  readonly yearMin: number
  readonly yearMax: number
}

const pairKey = (make: string, model: string) => `${make}\u0000${model}`

function compile(rule: Rule): CompiledRule {
  const { match } = rule
  const categories = match.category
    ? new Map(
        match.category.flatMap((spelled) => categoryTokens(spelled).map((t) => [t, spelled.trim()] as const)),
      )
    : null
  return {
    ref: {
      id: rule.id,
      version: rule.version,
      name: rule.name,
      scope: rule.scope,
      ...(rule.scope === 'private' && rule.owner !== null ? { owner: rule.owner } : {}),
    },
    categories,
    makes: match.make ? new Set(match.make.map(normalizeKey)) : null,
    models: match.model
      ? new Set(match.model.map((m) => pairKey(normalizeKey(m.make), normalizeKey(m.model))))
      : null,
    yearMin: match.year?.min ?? Number.NEGATIVE_INFINITY,
    yearMax: match.year?.max ?? Number.POSITIVE_INFINITY,
  }
}

/** The category a rule's `match` was satisfied by, '' when it has no category condition, null when it fails. */
function conditionsHold(rule: CompiledRule, d: MatchableDetection): string | null {
  if (d.year < rule.yearMin || d.year > rule.yearMax) return null
  if (rule.makes && !rule.makes.has(d.makeKey)) return null
  if (rule.models && !rule.models.has(pairKey(d.makeKey, d.modelKey))) return null
  if (!rule.categories) return ''
  for (const token of d.categoryTokens) {
    const spelled = rule.categories.get(token)
    if (spelled !== undefined) return spelled
  }
  return null
}

function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V) {
  const set = map.get(key)
  if (set) set.add(value)
  else map.set(key, new Set([value]))
}

function removeFrom<K, V>(map: Map<K, Set<V>>, key: K, value: V) {
  const set = map.get(key)
  if (!set) return
  set.delete(value)
  if (set.size === 0) map.delete(key)
}

interface Entry {
  readonly rule: CompiledRule
  readonly yearMin: number
  readonly yearMax: number
}

/**
 * Every live rule, indexed so that a detection only meets the rules that can match it: a rule is
 * filed under its most selective condition (model, else make, else category token; a rule on
 * years alone is checked against every detection), and a watch list's entries under make and
 * model. Matching one detection costs a few map look-ups plus the rules that share its make,
 * model or category, however many other rules exist.
 *
 * Versions only move forward: a record older than the version held is ignored, so a changelog
 * replayed or delivered twice changes nothing.
 */
export function createRuleIndex() {
  const rules = new Map<string, { rule: Rule; compiled: CompiledRule | null }>()
  const byModel = new Map<string, Set<CompiledRule>>()
  const byMake = new Map<string, Set<CompiledRule>>()
  const byCategory = new Map<string, Set<CompiledRule>>()
  const unanchored = new Set<CompiledRule>()
  const entries = new Map<string, Entry[]>()
  let entryCount = 0

  function file(rule: Rule, compiled: CompiledRule, add: boolean) {
    const put = add ? addTo : removeFrom
    if (rule.watchlist) {
      for (const e of rule.entries) {
        const key = pairKey(normalizeKey(e.make), normalizeKey(e.model))
        if (add) {
          const list = entries.get(key) ?? []
          if (list.length === 0) entries.set(key, list)
          list.push({
            rule: compiled,
            yearMin: e.yearMin ?? Number.NEGATIVE_INFINITY,
            yearMax: e.yearMax ?? Number.POSITIVE_INFINITY,
          })
          entryCount++
        } else {
          const list = entries.get(key)
          if (!list) continue
          const kept = list.filter((entry) => entry.rule !== compiled)
          entryCount -= list.length - kept.length
          if (kept.length > 0) entries.set(key, kept)
          else entries.delete(key)
        }
      }
    } else if (compiled.models) {
      for (const key of compiled.models) put(byModel, key, compiled)
    } else if (compiled.makes) {
      for (const key of compiled.makes) put(byMake, key, compiled)
    } else if (compiled.categories) {
      for (const key of compiled.categories.keys()) put(byCategory, key, compiled)
    } else if (add) unanchored.add(compiled)
    else unanchored.delete(compiled)
  }

  function remove(id: string): boolean {
    const held = rules.get(id)
    if (!held) return false
    if (held.compiled) file(held.rule, held.compiled, false)
    rules.delete(id)
    return true
  }

  /** Adds or replaces a rule; false (and nothing changes) when the version held is the same or newer. */
  function upsert(rule: Rule): boolean {
    const held = rules.get(rule.id)
    if (held && held.rule.version >= rule.version) return false
    remove(rule.id)
    const compiled = rule.enabled ? compile(rule) : null
    rules.set(rule.id, { rule, compiled })
    if (compiled) file(rule, compiled, true)
    return true
  }

  function match(d: MatchableDetection): RuleMatches | null {
    const found = new Map<CompiledRule, string>()
    const check = (rule: CompiledRule) => {
      if (found.has(rule)) return
      const satisfied = conditionsHold(rule, d)
      if (satisfied !== null) found.set(rule, satisfied)
    }
    const pair = pairKey(d.makeKey, d.modelKey)
    byModel.get(pair)?.forEach(check)
    byMake.get(d.makeKey)?.forEach(check)
    for (const token of d.categoryTokens) byCategory.get(token)?.forEach(check)
    unanchored.forEach(check)
    const listed = entries.get(pair)
    if (listed) {
      for (const entry of listed) {
        if (d.year >= entry.yearMin && d.year <= entry.yearMax) check(entry.rule)
      }
    }
    if (found.size === 0) return null
    const matched = [...found.keys()].sort((a, b) => (a.ref.id < b.ref.id ? -1 : a.ref.id > b.ref.id ? 1 : 0))
    const first = matched[0]!
    const builtinCategory = first.ref.id === BUILTIN_RULE_ID ? found.get(first) : undefined
    return {
      rules: matched.map((rule) => rule.ref),
      reason: builtinCategory ? `category matches ${builtinCategory}` : ruleReason(first.ref),
    }
  }

  return {
    upsert,
    remove,
    match,
    get(id: string): Rule | undefined {
      return rules.get(id)?.rule
    },
    /** Rules held, enabled or not. */
    get size() {
      return rules.size
    },
    /** Watch-list entries of enabled rules. */
    get entryCount() {
      return entryCount
    },
  }
}

export type RuleIndex = ReturnType<typeof createRuleIndex>

/** The reason an alert gives when the built-in rule is not among the rules that explain it. */
export function ruleReason(rule: Pick<AlertRule, 'name'>): string {
  return `matches rule ${rule.name}`
}
