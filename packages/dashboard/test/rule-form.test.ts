import { describe, expect, it } from 'vitest'
import {
  createBodyFromForm,
  describeMatch,
  formFromRule,
  parseModels,
  type Rule,
  type RuleFormFields,
  ruleAccess,
  updateBodyFromForm,
  watchlistFileName,
} from '../src/rule-form.js'

const empty: RuleFormFields = {
  name: '',
  scope: 'private',
  enabled: true,
  watchlist: false,
  makes: '',
  categories: '',
  models: '',
  yearMin: '',
  yearMax: '',
}

const rule: Rule = {
  id: '3f0e6c52-8f4b-4b1e-9d9a-2b8c2e0f4a17',
  version: 4,
  name: 'Old Land Cruisers',
  scope: 'private',
  enabled: true,
  watchlist: false,
  match: { year: { max: 2005 }, model: [{ make: 'Toyota', model: 'Land Cruiser' }] },
  entryCount: 0,
  builtin: false,
  owner: { id: '0b7d2c44-5a7e-4d59-9a53-1f3e0b8f8c11', username: 'alice' },
}

describe('rule form → request body', () => {
  it('sends lists trimmed, model pairs by line and years as numbers', () => {
    const result = createBodyFromForm({
      ...empty,
      name: '  Old SUVs ',
      makes: 'Toyota, , Lexus ',
      categories: 'SUV',
      models: 'Mercedes-Benz / E-Class, Wagon\n\n Jeep/Wrangler ',
      yearMax: '2005',
    })
    expect(result).toEqual({
      ok: true,
      body: {
        name: 'Old SUVs',
        scope: 'private',
        enabled: true,
        watchlist: false,
        match: {
          make: ['Toyota', 'Lexus'],
          category: ['SUV'],
          model: [
            { make: 'Mercedes-Benz', model: 'E-Class, Wagon' },
            { make: 'Jeep', model: 'Wrangler' },
          ],
          year: { max: 2005 },
        },
      },
    })
  })

  it('lets a watch list go without conditions, and nothing else', () => {
    expect(createBodyFromForm({ ...empty, name: 'Stolen', watchlist: true })).toEqual({
      ok: true,
      body: { name: 'Stolen', scope: 'private', enabled: true, watchlist: true },
    })
    const refused = createBodyFromForm({ ...empty, name: 'Nothing' })
    expect(refused.ok).toBe(false)
    expect(!refused.ok && refused.problems.join(' ')).toMatch(/at least one condition/)
  })

  it('names every mistake it can see before sending', () => {
    const result = createBodyFromForm({ ...empty, models: 'Toyota\nFord / F-150', yearMin: '20x5' })
    expect(result).toEqual({
      ok: false,
      problems: [
        'Models, line 1: write it as "Make / Model".',
        'Year from must be a year, such as 2005.',
        'Give the rule a name.',
      ],
    })
    expect(parseModels('Ford / F-150').models).toEqual([{ make: 'Ford', model: 'F-150' }])
  })

  it('sends only what an edit changed, whatever order the match keys come in', () => {
    const fields = formFromRule(rule)
    expect(fields.models).toBe('Toyota / Land Cruiser')
    expect(fields.yearMax).toBe('2005')
    expect(updateBodyFromForm(fields, rule)).toEqual({ ok: true, body: {} })
    expect(updateBodyFromForm({ ...fields, enabled: false, yearMin: '1990' }, rule)).toEqual({
      ok: true,
      body: {
        enabled: false,
        match: { model: [{ make: 'Toyota', model: 'Land Cruiser' }], year: { min: 1990, max: 2005 } },
      },
    })
    expect(updateBodyFromForm({ ...fields, name: 'Renamed', scope: 'shared' }, rule)).toEqual({
      ok: true,
      body: { name: 'Renamed', scope: 'shared' },
    })
  })

  it('describes a rule in one line', () => {
    expect(describeMatch(rule)).toBe('model Toyota Land Cruiser · year ≤ 2005')
    expect(describeMatch({ ...rule, watchlist: true, entryCount: 1, match: {} })).toBe(
      'watch list of 1 entry',
    )
    expect(
      describeMatch({ ...rule, match: { category: ['SUV', 'Pickup'], year: { min: 2000, max: 2005 } } }),
    ).toBe('category SUV, Pickup · year 2000–2005')
  })

  it('offers changes only where the API allows them', () => {
    expect(ruleAccess({ builtin: true, scope: 'shared' }, true)).toBe('builtin')
    expect(ruleAccess({ builtin: false, scope: 'shared' }, false)).toBe('admins')
    expect(ruleAccess({ builtin: false, scope: 'shared' }, true)).toBe('edit')
    expect(ruleAccess({ builtin: false, scope: 'private' }, false)).toBe('edit')
  })
})

describe('watch list download name', () => {
  it('is the rule name as a safe slug with its version', () => {
    expect(watchlistFileName({ name: 'Stolen vehicles', version: 3 })).toBe(
      'watchlist-stolen-vehicles-v3.csv',
    )
    expect(watchlistFileName({ name: 'Gestohlene Fahrzeuge: Köln/Bonn', version: 1 })).toBe(
      'watchlist-gestohlene-fahrzeuge-koln-bonn-v1.csv',
    )
    expect(watchlistFileName({ name: '../../etc/passwd', version: 2 })).toBe('watchlist-etc-passwd-v2.csv')
    expect(watchlistFileName({ name: '★★★', version: 7 })).toBe('watchlist-rule-v7.csv')
    expect(watchlistFileName({ name: 'x'.repeat(100), version: 1 })).toBe(
      `watchlist-${'x'.repeat(60)}-v1.csv`,
    )
  })
})
