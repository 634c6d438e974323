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
})
