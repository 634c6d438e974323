import type { Alert } from '@intellisite/detections-store'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  alertForReader,
  BUILTIN_RULE_ID,
  decodeRuleRecord,
  type Rule,
  ruleMatchSchema,
  ruleRecord,
  ruleSchema,
  ruleTombstone,
  visibleToAll,
} from '../src/index.js'

const watchlist: Rule = {
  id: 'f3b5e0a2-5a0e-4c8e-9d43-0c2b1f7f0a11',
  version: 3,
  name: 'stolen vehicles',
  owner: 'a7c1',
  scope: 'private',
  enabled: true,
  watchlist: true,
  match: {},
  entries: [
    { make: 'Toyota', model: 'Land Cruiser', yearMin: 2000, yearMax: 2005 },
    { make: 'Jeep', model: 'Wrangler' },
  ],
}

describe('the rules changelog', () => {
  it('round-trips a rule, watch list included, keyed by its id', () => {
    const record = ruleRecord(watchlist)
    expect(record.key).toBe(watchlist.id)
    expect(decodeRuleRecord(Buffer.from(record.key), Buffer.from(record.value!))).toEqual({
      kind: 'upsert',
      rule: watchlist,
    })
    expect(decodeRuleRecord(watchlist.id, ruleTombstone(watchlist.id).value)).toEqual({
      kind: 'delete',
      id: watchlist.id,
    })
  })

  it('reports what it cannot read instead of throwing', () => {
    const kinds = [
      decodeRuleRecord(null, '{}'),
      decodeRuleRecord('x', 'not json'),
      decodeRuleRecord('x', '{"format":2,"rule":{}}'),
      decodeRuleRecord('x', JSON.stringify({ format: 1, rule: { entries: [], id: 'x' } })),
      decodeRuleRecord('other-id', ruleRecord(watchlist).value),
    ]
    for (const decoded of kinds) expect(decoded.kind).toBe('invalid')
    expect(decodeRuleRecord('other-id', ruleRecord(watchlist).value)).toMatchObject({
      reason: expect.stringContaining('key'),
    })
  })
})

describe('rule validation', () => {
  it('refuses unknown fields, inverted years, and an empty match outside a watch list', () => {
    expect(ruleMatchSchema.safeParse({ make: ['Toyota'], colour: 'red' }).success).toBe(false)
    expect(ruleMatchSchema.safeParse({ year: { min: 2020, max: 2010 } }).success).toBe(false)
    expect(ruleMatchSchema.safeParse({ year: {} }).success).toBe(false)
    expect(ruleMatchSchema.safeParse({ make: [] }).success).toBe(false)
    expect(ruleMatchSchema.safeParse({ make: ['  '] }).success).toBe(false)
    expect(ruleMatchSchema.safeParse({ make: ['Toy\u0000ota'] }).success).toBe(false)
    expect(ruleMatchSchema.parse({ make: [' Toyota '] })).toEqual({ make: ['Toyota'] })
    // Limits count the text as given, as the JSON Schema derived from it says.
    expect(ruleMatchSchema.safeParse({ make: [` ${'a'.repeat(100)}`] }).success).toBe(false)
    expect(z.toJSONSchema(ruleMatchSchema, { io: 'input' })).toMatchObject({
      properties: {
        make: { items: { maxLength: 100, pattern: expect.any(String) } },
        year: { minProperties: 1 },
      },
    })
    expect(ruleSchema.safeParse({ ...watchlist, watchlist: false, entries: [] }).success).toBe(false)
    expect(
      ruleSchema.safeParse({ ...watchlist, entries: [{ make: 'a', model: 'b', yearMin: 5, yearMax: 1 }] })
        .success,
    ).toBe(false)
  })
})

describe('who sees an alert', () => {
  const base: Alert = {
    id: 'det-1',
    detectedAt: '2026-12-05T00:00:00.000Z',
    year: 2015,
    make: 'Toyota',
    model: 'RAV4',
    category: 'SUV',
    reason: 'category matches SUV',
  }
  const builtin = { id: BUILTIN_RULE_ID, version: 1, name: 'SUSPICIOUS_VEHICLE', scope: 'shared' as const }
  const ofA = { id: 'rule-a', version: 2, name: 'A toyotas', scope: 'private' as const, owner: 'user-a' }
  const ofB = { id: 'rule-b', version: 1, name: 'B secret list', scope: 'private' as const, owner: 'user-b' }

  it('shows alerts of rules written before rules existed to everyone, as the built-in rule', () => {
    expect(alertForReader(base, { userId: 'anyone' })).toEqual({ ...base, rules: [builtin] })
    expect(visibleToAll(base)).toBe(true)
  })

  it('shows shared rules and the reader own private rules, without owners', () => {
    const alert = { ...base, rules: [builtin, ofA, ofB] }
    const { owner: _owner, ...ofAShown } = ofA
    expect(alertForReader(alert, { userId: 'user-a' })?.rules).toEqual([builtin, ofAShown])
    expect(alertForReader(alert, { userId: 'user-c' })?.rules).toEqual([builtin])
    expect(visibleToAll(alert)).toBe(false)
  })

  it('hides an alert whose rules are all someone else private ones, and never names them', () => {
    const alert = { ...base, reason: 'matches rule B secret list', rules: [ofB, ofA] }
    expect(alertForReader(alert, { userId: 'user-c' })).toBeNull()
    const forA = alertForReader(alert, { userId: 'user-a' })
    expect(forA?.reason).toBe('matches rule A toyotas')
    expect(JSON.stringify(forA)).not.toContain('secret')
    expect(JSON.stringify(forA)).not.toContain('user-a')
  })

  it('filters on the rules asked for, among the visible ones', () => {
    const alert = { ...base, rules: [builtin, ofA] }
    expect(alertForReader(alert, { userId: 'user-a' }, new Set(['rule-a']))).not.toBeNull()
    expect(alertForReader(alert, { userId: 'user-b' }, new Set(['rule-a']))).toBeNull()
    expect(alertForReader(alert, { userId: 'user-b' }, new Set([BUILTIN_RULE_ID]))).not.toBeNull()
  })
})
