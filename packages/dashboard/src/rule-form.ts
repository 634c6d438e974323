// The rule form's values and the API's rule bodies, both ways. Pure: the view reads the form into
// RuleFormFields, and everything that decides what is sent lives here, under unit test.

export type RuleScope = 'private' | 'shared'

export interface RuleMatch {
  category?: string[]
  make?: string[]
  model?: { make: string; model: string }[]
  year?: { min?: number; max?: number }
}

/** A rule as `GET /rules` lists it (the fields the page uses). */
export interface Rule {
  id: string
  version: number
  name: string
  scope: RuleScope
  enabled: boolean
  watchlist: boolean
  match: RuleMatch
  entryCount: number
  builtin: boolean
  owner: { id: string; username: string } | null
}

/** The form as typed: lists are comma-separated, models one `Make / Model` per line. */
export interface RuleFormFields {
  name: string
  scope: RuleScope
  enabled: boolean
  watchlist: boolean
  makes: string
  categories: string
  models: string
  yearMin: string
  yearMax: string
}

export interface CreateRuleBody {
  name: string
  scope: RuleScope
  enabled: boolean
  watchlist: boolean
  match?: RuleMatch
}

export interface UpdateRuleBody {
  name?: string
  scope?: RuleScope
  enabled?: boolean
  match?: RuleMatch
}

/** What the form says, or what is wrong with it before anything is sent. */
export type FormResult<T> = { ok: true; body: T } | { ok: false; problems: string[] }

export function splitList(text: string): string[] {
  return text
    .split(',')
    .map((value) => value.trim())
    .filter((value) => value !== '')
}

/** A model name may hold a comma ("E-Class, Wagon"), so pairs are one per line, make first. */
export function parseModels(text: string): { models: { make: string; model: string }[]; problems: string[] } {
  const models: { make: string; model: string }[] = []
  const problems: string[] = []
  text.split(/\r?\n/).forEach((line, index) => {
    if (line.trim() === '') return
    const slash = line.indexOf('/')
    const make = slash < 0 ? '' : line.slice(0, slash).trim()
    const model = slash < 0 ? '' : line.slice(slash + 1).trim()
    if (make === '' || model === '') problems.push(`Models, line ${index + 1}: write it as "Make / Model".`)
    else models.push({ make, model })
  })
  return { models, problems }
}

function parseYear(label: string, text: string, problems: string[]): number | undefined {
  const trimmed = text.trim()
  if (trimmed === '') return undefined
  if (!/^\d{1,4}$/.test(trimmed)) {
    problems.push(`${label} must be a year, such as 2005.`)
    return undefined
  }
  return Number(trimmed)
}

/** The conditions of the form; the API judges their bounds (years, lengths) and says what is wrong. */
export function matchFromForm(fields: RuleFormFields): FormResult<RuleMatch> {
  const problems: string[] = []
  const match: RuleMatch = {}
  const makes = splitList(fields.makes)
  if (makes.length > 0) match.make = makes
  const categories = splitList(fields.categories)
  if (categories.length > 0) match.category = categories
  const parsed = parseModels(fields.models)
  problems.push(...parsed.problems)
  if (parsed.models.length > 0) match.model = parsed.models
  const min = parseYear('Year from', fields.yearMin, problems)
  const max = parseYear('Year to', fields.yearMax, problems)
  if (min !== undefined || max !== undefined) {
    match.year = {}
    if (min !== undefined) match.year.min = min
    if (max !== undefined) match.year.max = max
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, body: match }
}

export function isEmptyMatch(match: RuleMatch): boolean {
  return Object.keys(match).length === 0
}

export function createBodyFromForm(fields: RuleFormFields): FormResult<CreateRuleBody> {
  const match = matchFromForm(fields)
  const problems = match.ok ? [] : [...match.problems]
  if (fields.name.trim() === '') problems.push('Give the rule a name.')
  if (match.ok && !fields.watchlist && isEmptyMatch(match.body))
    problems.push('Give at least one condition (make, category, model or year), or make it a watch list.')
  if (!match.ok || problems.length > 0) return { ok: false, problems }
  const body: CreateRuleBody = {
    name: fields.name.trim(),
    scope: fields.scope,
    enabled: fields.enabled,
    watchlist: fields.watchlist,
  }
  if (!isEmptyMatch(match.body)) body.match = match.body
  return { ok: true, body }
}

/** JSON with keys sorted, so two matches compare equal whatever order their keys came in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => a.localeCompare(b)))
      : inner,
  )
}

/**
 * Only what changed: a field sent unchanged is still a change to the API (sending `scope` is
 * sharing, for instance), and an empty body means there is nothing to save.
 */
export function updateBodyFromForm(fields: RuleFormFields, rule: Rule): FormResult<UpdateRuleBody> {
  const match = matchFromForm(fields)
  if (!match.ok) return match
  if (fields.name.trim() === '') return { ok: false, problems: ['Give the rule a name.'] }
  if (!rule.watchlist && isEmptyMatch(match.body))
    return { ok: false, problems: ['Give at least one condition (make, category, model or year).'] }
  const body: UpdateRuleBody = {}
  if (fields.name.trim() !== rule.name) body.name = fields.name.trim()
  if (fields.scope !== rule.scope) body.scope = fields.scope
  if (fields.enabled !== rule.enabled) body.enabled = fields.enabled
  if (canonical(match.body) !== canonical(rule.match)) body.match = match.body
  return { ok: true, body }
}

export function formFromRule(rule: Rule): RuleFormFields {
  return {
    name: rule.name,
    scope: rule.scope,
    enabled: rule.enabled,
    watchlist: rule.watchlist,
    makes: (rule.match.make ?? []).join(', '),
    categories: (rule.match.category ?? []).join(', '),
    models: (rule.match.model ?? []).map((pair) => `${pair.make} / ${pair.model}`).join('\n'),
    yearMin: rule.match.year?.min === undefined ? '' : String(rule.match.year.min),
    yearMax: rule.match.year?.max === undefined ? '' : String(rule.match.year.max),
  }
}

/** One line for the rules table: what the rule matches, in the order a reader checks it. */
export function describeMatch(rule: Pick<Rule, 'match' | 'watchlist' | 'entryCount'>): string {
  const parts: string[] = []
  if (rule.watchlist)
    parts.push(`watch list of ${rule.entryCount} ${rule.entryCount === 1 ? 'entry' : 'entries'}`)
  const { make, category, model, year } = rule.match
  if (category) parts.push(`category ${category.join(', ')}`)
  if (make) parts.push(`make ${make.join(', ')}`)
  if (model) parts.push(`model ${model.map((pair) => `${pair.make} ${pair.model}`).join(', ')}`)
  if (year) {
    if (year.min !== undefined && year.max !== undefined) parts.push(`year ${year.min}–${year.max}`)
    else if (year.min !== undefined) parts.push(`year ≥ ${year.min}`)
    else if (year.max !== undefined) parts.push(`year ≤ ${year.max}`)
  }
  return parts.join(' · ') || 'nothing'
}

/** What the signed-in user may do to a rule; the API decides in the end, this only spares a 403. */
export function ruleAccess(
  rule: Pick<Rule, 'builtin' | 'scope'>,
  isAdmin: boolean,
): 'edit' | 'builtin' | 'admins' {
  if (rule.builtin) return 'builtin'
  if (rule.scope === 'shared' && !isAdmin) return 'admins'
  return 'edit'
}

/** `watchlist-<name>-v<version>.csv`: safe on every file system, and two versions do not collide. */
export function watchlistFileName(rule: Pick<Rule, 'name' | 'version'>): string {
  const slug = rule.name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60)
    .replace(/-+$/, '')
  return `watchlist-${slug || 'rule'}-v${rule.version}.csv`
}
