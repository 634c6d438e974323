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

/**
 * Rules filed under one key (a model, a make, a category token, or none): those bounded to a few
 * years under each of their years, the rest (no bound, or a span wider than `YEAR_SPAN_FILED`)
 * under any year. A detection then meets only the rules of its own year: 1,000 rules over 30
 * model years cost about what the 40 of its year do.
 */
interface Bucket {
  readonly anyYear: Set<CompiledRule>
  readonly byYear: Map<number, Set<CompiledRule>>
}

/** Wider spans are checked against every year rather than filed under each (a rule from 1900 on). */
const YEAR_SPAN_FILED = 64

const filedYears = (rule: CompiledRule): number | null =>
  Number.isFinite(rule.yearMin) &&
  Number.isFinite(rule.yearMax) &&
  rule.yearMax - rule.yearMin < YEAR_SPAN_FILED
    ? rule.yearMax - rule.yearMin + 1
    : null

function fileInBucket(buckets: Map<string, Bucket>, key: string, rule: CompiledRule, add: boolean) {
  let bucket = buckets.get(key)
  if (!bucket) {
    if (!add) return
    bucket = { anyYear: new Set(), byYear: new Map() }
    buckets.set(key, bucket)
  }
  const span = filedYears(rule)
  if (span === null) {
    if (add) bucket.anyYear.add(rule)
    else bucket.anyYear.delete(rule)
  } else {
    for (let year = rule.yearMin; year < rule.yearMin + span; year++) {
      const rules = bucket.byYear.get(year)
      if (add) {
        if (rules) rules.add(rule)
        else bucket.byYear.set(year, new Set([rule]))
      } else if (rules) {
        rules.delete(rule)
        if (rules.size === 0) bucket.byYear.delete(year)
      }
    }
  }
  if (bucket.anyYear.size === 0 && bucket.byYear.size === 0) buckets.delete(key)
}

/** The rules matched so far for one detection and the category each was satisfied by, in step. */
interface Found {
  rules: CompiledRule[]
  satisfied: string[]
}

function consider(found: Found, rule: CompiledRule, d: MatchableDetection) {
  // A rule is met again through a second category token or an overlapping watch-list entry.
  if (found.rules.includes(rule)) return
  const satisfied = conditionsHold(rule, d)
  if (satisfied === null) return
  found.rules.push(rule)
  found.satisfied.push(satisfied)
}

function considerBucket(found: Found, bucket: Bucket | undefined, d: MatchableDetection) {
  if (!bucket) return
  for (const rule of bucket.anyYear) consider(found, rule, d)
  const ofYear = bucket.byYear.get(d.year)
  if (ofYear) for (const rule of ofYear) consider(found, rule, d)
}

const byId = (a: CompiledRule, b: CompiledRule) => (a.ref.id < b.ref.id ? -1 : a.ref.id > b.ref.id ? 1 : 0)

interface Entry {
  readonly rule: CompiledRule
  readonly yearMin: number
  readonly yearMax: number
}

/** Where a rule without a model, make or category condition is filed (years alone, or nothing). */
const UNANCHORED = ''

/**
 * Every live rule, indexed so that a detection only meets the rules that can match it: a rule is
 * filed under its most selective condition (model, else make, else category token; a rule on
 * years alone under no key) and, within it, under its years; a watch list's entries under make and
 * model. Matching one detection costs a few map look-ups plus the rules of its year that share its
 * make, model or category, however many other rules exist.
 *
 * Versions only move forward: a record older than the version held is ignored, so a changelog
 * replayed or delivered twice changes nothing.
 */
export function createRuleIndex() {
  const rules = new Map<string, { rule: Rule; compiled: CompiledRule | null }>()
  const byModel = new Map<string, Bucket>()
  const byMake = new Map<string, Bucket>()
  const byCategory = new Map<string, Bucket>()
  const unanchored = new Map<string, Bucket>()
  const entries = new Map<string, Entry[]>()
  let entryCount = 0

  function file(rule: Rule, compiled: CompiledRule, add: boolean) {
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
      for (const key of compiled.models) fileInBucket(byModel, key, compiled, add)
    } else if (compiled.makes) {
      for (const key of compiled.makes) fileInBucket(byMake, key, compiled, add)
    } else if (compiled.categories) {
      for (const key of compiled.categories.keys()) fileInBucket(byCategory, key, compiled, add)
    } else fileInBucket(unanchored, UNANCHORED, compiled, add)
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
    const found: Found = { rules: [], satisfied: [] }
    const pair = pairKey(d.makeKey, d.modelKey)
    considerBucket(found, byModel.get(pair), d)
    considerBucket(found, byMake.get(d.makeKey), d)
    for (const token of d.categoryTokens) considerBucket(found, byCategory.get(token), d)
    considerBucket(found, unanchored.get(UNANCHORED), d)
    const listed = entries.get(pair)
    if (listed) {
      for (const entry of listed) {
        if (d.year >= entry.yearMin && d.year <= entry.yearMax) consider(found, entry.rule, d)
      }
    }
    if (found.rules.length === 0) return null
    const matched = found.rules.length === 1 ? found.rules : [...found.rules].sort(byId)
    const first = matched[0]!
    const builtinCategory =
      first.ref.id === BUILTIN_RULE_ID ? found.satisfied[found.rules.indexOf(first)] : undefined
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
