// The rule sets the rules-cost benchmark compares, drawn deterministically from the simulator's
// catalogue (61 makes, their models, categories and production years).
import { BUILTIN_RULE_ID, type Rule, type WatchEntry } from '@intellisite/alert-rules'
import { CATALOGUE } from '../../producer/src/catalogue.js'
import { createRandom, type Random, randomInt } from '../../producer/src/random.js'

const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!

function base(i: number, random: Random): Omit<Rule, 'match'> {
  // One rule in ten is shared (an admin's); the others belong to 200 users.
  const shared = random() < 0.1
  return {
    id: `20000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    version: 1,
    name: `rule ${i}`,
    owner: shared ? null : `user-${i % 200}`,
    scope: shared ? 'shared' : 'private',
    enabled: true,
    watchlist: false,
    entries: [],
  }
}

const makes = [...new Set(CATALOGUE.map((e) => e.make))]
const categories = [...new Set(CATALOGUE.flatMap((e) => e.category.split(',').map((c) => c.trim())))]

/**
 * 1,000 rules: 400 on a make within two model years, 400 on one to three make/model pairs within
 * two years, 200 on a category within one year. Makes are spread evenly; models, categories and
 * years are drawn from the catalogue.
 */
export const MIX_DESCRIPTION =
  '400 make rules (a make, 2 model years), 400 model rules (1–3 make/model pairs, 2 years), ' +
  "200 category rules (a category, 1 year), spread over the catalogue's makes; 1 in 10 shared, " +
  'the others private to 200 users'

export function thousandRules(seed = 'rules'): Rule[] {
  const random = createRandom(seed)
  const rules: Rule[] = []
  const years = (from: number, to: number, span: number) => {
    const min = randomInt(random, from, Math.max(from, to - span + 1))
    return { min, max: min + span - 1 }
  }
  for (let i = 0; i < 1_000; i++) {
    if (i < 400) {
      const make = makes[i % makes.length]!
      const models = CATALOGUE.filter((e) => e.make === make)
      const from = Math.min(...models.map((e) => e.fromYear))
      const to = Math.max(...models.map((e) => e.toYear))
      rules.push({ ...base(i, random), match: { make: [make], year: years(from, to, 2) } })
    } else if (i < 800) {
      const first = pick(random, CATALOGUE)
      const pairs = [first, ...Array.from({ length: randomInt(random, 0, 2) }, () => pick(random, CATALOGUE))]
      rules.push({
        ...base(i, random),
        match: {
          model: pairs.map((e) => ({ make: e.make, model: e.model })),
          year: years(first.fromYear, first.toYear, 2),
        },
      })
    } else {
      const year = randomInt(random, 1992, 2022)
      rules.push({
        ...base(i, random),
        match: { category: [pick(random, categories)], year: { min: year, max: year } },
      })
    }
  }
  if (rules.some((r) => r.id === BUILTIN_RULE_ID)) throw new Error('a generated id is the built-in one')
  return rules
}

/**
 * Three shared rules on model years alone, each spanning every year a detection can have: every
 * detection matches all three. About the broad set's alert output (90 % of detections, 3.3 rules
 * each) with three rules instead of 1,000: beside it, what the broad set's rules cost apart from
 * the alerts they cause.
 */
export function matchEverything(): Rule[] {
  const random = createRandom('everything')
  return Array.from({ length: 3 }, (_, i) => ({
    ...base(i, random),
    owner: null,
    scope: 'shared' as const,
    match: { year: { min: 1900 + i, max: 2100 } },
  }))
}

/** One rule in this many of the narrow set names a model the simulator reports. */
const NARROW_LISTED_EVERY = 10

export const NARROW_DESCRIPTION =
  `each a make and model within 1 or 2 model years; 1 in ${NARROW_LISTED_EVERY} a catalogue model, the others models ` +
  'the simulator never reports; 1 in 10 shared, the others private to 200 users'

/**
 * 1,000 narrow rules, as an operator writes them for wanted vehicles: each one make and model
 * within one or two model years. The catalogue's 173 models stand for the thousands on real roads:
 * drawn from it alone, 1,000 such rules would meet about one rule per detection, so only one rule
 * in ten names a catalogue model and the others name models no camera reports (still filed in the
 * index under their make and model).
 */
export function narrowRules(seed = 'narrow rules'): Rule[] {
  const random = createRandom(seed)
  return Array.from({ length: 1_000 }, (_, i) => {
    const e = pick(random, CATALOGUE)
    const span = randomInt(random, 1, Math.min(2, e.toYear - e.fromYear + 1))
    const min = randomInt(random, e.fromYear, e.toYear - span + 1)
    const model = i % NARROW_LISTED_EVERY === 0 ? e.model : `${e.model} unlisted ${i}`
    return {
      ...base(i, random),
      match: { model: [{ make: e.make, model }], year: { min, max: min + span - 1 } },
    }
  })
}

/**
 * The same rules, moved to years no detection has: every detection still meets the rules filed
 * under its make, model and category, and none matches. What matching costs without the alerts.
 */
export function unmatchable(rules: readonly Rule[]): Rule[] {
  return rules.map((rule) => ({ ...rule, match: { ...rule.match, year: { min: 2190, max: 2199 } } }))
}

/**
 * One watch list of 100,000 entries: every 1,000th a catalogue make/model within a few years (the
 * entries detections can meet), the others models no camera reports.
 */
export function watchList(seed = 'watch list'): Rule {
  const random = createRandom(seed)
  const entries: WatchEntry[] = Array.from({ length: 100_000 }, (_, i) => {
    if (i % 1_000 === 0) {
      const e = pick(random, CATALOGUE)
      const yearMin = randomInt(random, e.fromYear, e.toYear)
      return { make: e.make, model: e.model, yearMin, yearMax: Math.min(e.toYear, yearMin + 2) }
    }
    return { make: makes[i % makes.length]!, model: `unlisted ${i}` }
  })
  return {
    ...base(1_000, random),
    name: 'watch list',
    owner: 'user-0',
    scope: 'private',
    watchlist: true,
    match: {},
    entries,
  }
}
