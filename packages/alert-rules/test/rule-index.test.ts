import { categoryTokens, normalizeKey } from '@intellisite/detections-store'
import { describe, expect, it } from 'vitest'
import {
  BUILTIN_RULE_ID,
  builtinRule,
  createRuleIndex,
  type MatchableDetection,
  type Rule,
} from '../src/index.js'

function detection(make: string, model: string, category: string, year = 2015): MatchableDetection {
  return {
    makeKey: normalizeKey(make),
    modelKey: normalizeKey(model),
    categoryTokens: categoryTokens(category),
    year,
  }
}

let next = 0
function rule(overrides: Partial<Rule>): Rule {
  next++
  return {
    id: `10000000-0000-4000-8000-${String(next).padStart(12, '0')}`,
    version: 1,
    name: `rule ${next}`,
    owner: 'user-a',
    scope: 'private',
    enabled: true,
    watchlist: false,
    match: {},
    entries: [],
    ...overrides,
  }
}

describe('the built-in rule', () => {
  it('matches exactly as SUSPICIOUS_VEHICLE always has, with the same reason', () => {
    const index = createRuleIndex()
    index.upsert(builtinRule('SUV'))
    expect(index.match(detection('Toyota', 'RAV4', 'SUV, Pickup'))).toEqual({
      reason: 'category matches SUV',
      rules: [{ id: BUILTIN_RULE_ID, version: 1, name: 'SUSPICIOUS_VEHICLE', scope: 'shared' }],
    })
    expect(index.match(detection('Toyota', 'RAV4', 'suv'))?.reason).toBe('category matches SUV')
    expect(index.match(detection('Toyota', 'Tacoma', 'Pickup'))).toBeNull()
    expect(index.match(detection('Toyota', 'Tacoma', 'SUVs'))).toBeNull()
  })

  it('keeps the configured spelling of each listed category and is off when the list is empty', () => {
    const index = createRuleIndex()
    index.upsert(builtinRule(' SUV , pickup ,'))
    expect(index.match(detection('Ford', 'F-150', 'Pickup'))?.reason).toBe('category matches pickup')
    const off = createRuleIndex()
    off.upsert(builtinRule(''))
    expect(off.match(detection('Ford', 'Explorer', 'SUV'))).toBeNull()
  })
})

describe('rule conditions', () => {
  it('needs every condition given, and any value within a list', () => {
    const index = createRuleIndex()
    const r = rule({
      match: { make: ['Toyota', 'HONDA'], category: ['SUV'], year: { min: 2010, max: 2020 } },
    })
    index.upsert(r)
    expect(index.match(detection('toyota', 'RAV4', 'Wagon, SUV', 2012))?.rules.map((x) => x.id)).toEqual([
      r.id,
    ])
    expect(index.match(detection('Honda', 'CR-V', 'SUV', 2020))?.rules).toHaveLength(1)
    expect(index.match(detection('Toyota', 'RAV4', 'SUV', 2009))).toBeNull()
    expect(index.match(detection('Toyota', 'Camry', 'Sedan', 2012))).toBeNull()
    expect(index.match(detection('Ford', 'Explorer', 'SUV', 2012))).toBeNull()
  })

  it('matches models as make and model pairs, and rules on years alone', () => {
    const index = createRuleIndex()
    const models = rule({ match: { model: [{ make: 'Toyota', model: 'Land Cruiser' }] } })
    const years = rule({ match: { year: { max: 1990 } } })
    index.upsert(models)
    index.upsert(years)
    expect(index.match(detection('TOYOTA', 'land cruiser', 'SUV', 2000))?.rules.map((x) => x.id)).toEqual([
      models.id,
    ])
    expect(index.match(detection('Lexus', 'Land Cruiser', 'SUV', 2000))).toBeNull()
    expect(index.match(detection('Lexus', 'LS', 'Sedan', 1989))?.rules.map((x) => x.id)).toEqual([years.id])
  })

  it('names the first matched rule in the reason, the built-in one first, and carries private owners', () => {
    const index = createRuleIndex()
    index.upsert(builtinRule('SUV'))
    const mine = rule({ name: 'my Toyotas', match: { make: ['Toyota'] } })
    index.upsert(mine)
    const both = index.match(detection('Toyota', 'RAV4', 'SUV'))
    expect(both?.reason).toBe('category matches SUV')
    expect(both?.rules.map((x) => x.id)).toEqual([BUILTIN_RULE_ID, mine.id])
    expect(both?.rules[1]).toEqual({
      id: mine.id,
      version: 1,
      name: 'my Toyotas',
      scope: 'private',
      owner: 'user-a',
    })
    expect(index.match(detection('Toyota', 'Camry', 'Sedan'))?.reason).toBe('matches rule my Toyotas')
  })

  it('skips disabled rules', () => {
    const index = createRuleIndex()
    index.upsert(rule({ enabled: false, match: { make: ['Toyota'] } }))
    expect(index.match(detection('Toyota', 'Camry', 'Sedan'))).toBeNull()
  })
})

describe('watch lists', () => {
  it('match through any entry, within its years, and the rule match as well', () => {
    const index = createRuleIndex()
    const list = rule({
      watchlist: true,
      match: { category: ['SUV'] },
      entries: [
        { make: 'Toyota', model: 'Land Cruiser', yearMin: 2000, yearMax: 2005 },
        { make: 'Jeep', model: 'Wrangler' },
      ],
    })
    index.upsert(list)
    expect(index.match(detection('Toyota', 'Land Cruiser', 'SUV', 2003))?.rules.map((x) => x.id)).toEqual([
      list.id,
    ])
    expect(index.match(detection('Toyota', 'Land Cruiser', 'SUV', 2006))).toBeNull()
    expect(index.match(detection('jeep', 'WRANGLER', 'SUV', 1999))).not.toBeNull()
    expect(index.match(detection('Jeep', 'Wrangler', 'Convertible', 1999))).toBeNull()
    expect(index.entryCount).toBe(2)
  })

  it('an empty watch list matches nothing', () => {
    const index = createRuleIndex()
    index.upsert(rule({ watchlist: true }))
    expect(index.match(detection('Toyota', 'Camry', 'Sedan'))).toBeNull()
  })
})

describe('versions and deletes', () => {
  it('replaces a rule by a newer version only, and forgets a deleted one', () => {
    const index = createRuleIndex()
    const v1 = rule({ match: { make: ['Toyota'] } })
    const v2 = { ...v1, version: 2, match: { make: ['Honda'] } }
    expect(index.upsert(v1)).toBe(true)
    expect(index.upsert(v2)).toBe(true)
    expect(index.upsert(v1)).toBe(false)
    expect(index.match(detection('Toyota', 'Camry', 'Sedan'))).toBeNull()
    expect(index.match(detection('Honda', 'Civic', 'Sedan'))?.rules[0]?.version).toBe(2)
    expect(index.remove(v1.id)).toBe(true)
    expect(index.match(detection('Honda', 'Civic', 'Sedan'))).toBeNull()
    expect(index.size).toBe(0)
  })

  it('removes a replaced watch list entries', () => {
    const index = createRuleIndex()
    const v1 = rule({ watchlist: true, entries: [{ make: 'Toyota', model: 'Camry' }] })
    index.upsert(v1)
    index.upsert({ ...v1, version: 2, entries: [{ make: 'Honda', model: 'Civic' }] })
    expect(index.match(detection('Toyota', 'Camry', 'Sedan'))).toBeNull()
    expect(index.match(detection('Honda', 'Civic', 'Sedan'))).not.toBeNull()
    expect(index.entryCount).toBe(1)
  })

  it('files rules by their years: narrow, wide and open ranges match at their edges and not past them', () => {
    const index = createRuleIndex()
    const narrow = rule({ match: { make: ['Toyota'], year: { min: 2010, max: 2011 } } })
    const wide = rule({ match: { make: ['Toyota'], year: { min: 1900, max: 2100 } } })
    const open = rule({ match: { category: ['SUV'], year: { min: 2011 } } })
    for (const r of [narrow, wide, open]) index.upsert(r)
    const ids = (year: number) =>
      index.match(detection('Toyota', 'RAV4', 'SUV', year))?.rules.map((x) => x.id) ?? []
    expect(ids(2009)).toEqual([wide.id])
    expect(ids(2010)).toEqual([narrow.id, wide.id])
    expect(ids(2011)).toEqual([narrow.id, wide.id, open.id])
    expect(ids(2012)).toEqual([wide.id, open.id])
    expect(ids(2101)).toEqual([open.id])
    // A new version with other years is filed under those only.
    index.upsert({ ...narrow, version: 2, match: { make: ['Toyota'], year: { min: 2015, max: 2015 } } })
    expect(ids(2010)).toEqual([wide.id])
    expect(ids(2015)).toEqual([narrow.id, wide.id, open.id])
    index.remove(narrow.id)
    expect(ids(2015)).toEqual([wide.id, open.id])
  })

  it('finds exactly what checking every rule against the detection finds', () => {
    const makes = ['Toyota', 'Honda', 'Ford', 'Kia', 'Mazda', 'Audi', 'BMW', 'Fiat', 'Jeep', 'Seat']
    const models = ['A', 'B', 'C', 'D', 'E']
    const categories = ['SUV', 'Sedan', 'Wagon', 'Pickup', 'Coupe', 'Van', 'Convertible', 'Hatchback']
    let seed = 7
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!
    const years = () => {
      const kind = random()
      const min = 1995 + Math.floor(random() * 30)
      if (kind < 0.4) return { min, max: min + Math.floor(random() * 3) }
      if (kind < 0.5) return { min: 1900, max: 2100 }
      if (kind < 0.6) return { min }
      if (kind < 0.7) return { max: min }
      if (kind < 0.75) return undefined
      return { min, max: min }
    }
    const rules: Rule[] = Array.from({ length: 60 }, (_, i) => {
      const year = years()
      const kind = i % 5
      if (kind === 4) {
        return rule({
          watchlist: true,
          entries: Array.from({ length: 3 }, () => {
            const y = years()
            return { make: pick(makes), model: pick(models), yearMin: y?.min, yearMax: y?.max }
          }),
        })
      }
      const match: Rule['match'] = year ? { year } : {}
      if (kind === 0 || random() < 0.3) match.make = [pick(makes), pick(makes)]
      if (kind === 1) match.model = [{ make: pick(makes), model: pick(models) }]
      if (kind === 2 || random() < 0.3) match.category = [pick(categories)]
      // Years alone: one year, or the rule would match nearly every detection.
      if (kind === 3) match.year = { min: 1995 + (i % 30), max: 1995 + (i % 30) }
      if (Object.keys(match).length === 0) match.year = { min: 2000, max: 2001 }
      return rule({ match, enabled: random() < 0.9 })
    })
    const index = createRuleIndex()
    for (const r of rules) index.upsert(r)
    const within = (year: number, min?: number, max?: number) =>
      year >= (min ?? Number.NEGATIVE_INFINITY) && year <= (max ?? Number.POSITIVE_INFINITY)
    const holds = (r: Rule, d: MatchableDetection) => {
      if (!r.enabled) return false
      const same = (a: string, b: string) => normalizeKey(a) === normalizeKey(b)
      if (r.watchlist) {
        return r.entries.some(
          (e) => same(e.make, d.makeKey) && same(e.model, d.modelKey) && within(d.year, e.yearMin, e.yearMax),
        )
      }
      const { make, model, category, year } = r.match
      return (
        (!year || within(d.year, year.min, year.max)) &&
        (!make || make.some((m) => same(m, d.makeKey))) &&
        (!model || model.some((m) => same(m.make, d.makeKey) && same(m.model, d.modelKey))) &&
        (!category || category.some((c) => d.categoryTokens.includes(normalizeKey(c))))
      )
    }
    let matched = 0
    for (let i = 0; i < 3_000; i++) {
      const d = detection(
        pick(makes),
        pick(models),
        `${pick(categories)}, ${pick(categories)}`,
        1990 + Math.floor(random() * 40),
      )
      const expected = rules
        .filter((r) => holds(r, d))
        .map((r) => r.id)
        .sort()
      expect(index.match(d)?.rules.map((r) => r.id) ?? [], JSON.stringify(d)).toEqual(expected)
      if (expected.length > 0) matched++
    }
    // The comparison means something only if both outcomes are common.
    expect(matched).toBeGreaterThan(200)
    expect(matched).toBeLessThan(2_800)
  })
})
