import { describe, expect, it } from 'vitest'
import { type Alert, alertsUrl, createFeedState, matchedRules, reconnectDelayMs } from '../src/feed-state.js'

const alert = (id: string): Alert => ({
  id,
  detectedAt: '2026-11-30T12:00:00.000Z',
  year: 2020,
  make: 'Toyota',
  model: 'RAV4',
  category: 'SUV',
  reason: 'category matches SUV',
})

describe('feed state', () => {
  it('puts the newest on top, drops a repeated id, and remembers the last resume token', () => {
    const state = createFeedState()
    expect(state.add(alert('a'), 't1')).toBe(true)
    expect(state.add(alert('b'), 't2')).toBe(true)
    expect(state.add(alert('a'), 't3')).toBe(false)
    expect(state.alerts.map((a) => a.id)).toEqual(['b', 'a'])
    expect(state.lastEventId).toBe('t3')
    state.moveTo('t4')
    expect(state.lastEventId).toBe('t4')
  })

  it('keeps a bounded list and forgets the ids it no longer shows', () => {
    const state = createFeedState(2)
    for (const id of ['a', 'b', 'c']) state.add(alert(id), id)
    expect(state.alerts.map((a) => a.id)).toEqual(['c', 'b'])
    expect(state.add(alert('a'), 'a2')).toBe(true)
    state.clear()
    expect(state.alerts).toEqual([])
    expect(state.lastEventId).toBeNull()
  })
})

describe('matched rules', () => {
  it('names every rule the alert lists, with its scope, in the order the API sends them', () => {
    const shown = matchedRules({
      ...alert('a'),
      reason: 'category matches SUV',
      rules: [
        {
          id: '00000000-0000-4000-8000-000000000001',
          version: 1,
          name: 'SUSPICIOUS_VEHICLE',
          scope: 'shared',
        },
        { id: 'r-2', version: 4, name: 'my watch list', scope: 'private' },
      ],
    })
    expect(shown).toEqual([
      { name: 'SUSPICIOUS_VEHICLE', scope: 'shared' },
      { name: 'my watch list', scope: 'private' },
    ])
  })

  it('falls back to the reason for an alert that names no rule', () => {
    expect(matchedRules(alert('a'))).toEqual([{ name: 'category matches SUV', scope: null }])
    expect(matchedRules({ ...alert('b'), rules: [] })).toEqual([
      { name: 'category matches SUV', scope: null },
    ])
  })
})

describe('alerts URL', () => {
  it('carries the token and filters; a resume position wins over since', () => {
    const filters = { make: ' Audi, BMW ', category: '' }
    const fresh = new URL(alertsUrl('tok', filters, { since: '2026-11-30T12:00:00.000Z' }), 'http://x')
    expect(fresh.pathname).toBe('/alerts')
    expect(Object.fromEntries(fresh.searchParams)).toEqual({
      access_token: 'tok',
      make: 'Audi, BMW',
      since: '2026-11-30T12:00:00.000Z',
    })
    const resumed = new URL(alertsUrl('tok', filters, { lastEventId: 'AQID', since: 'x' }), 'http://x')
    expect(resumed.searchParams.get('lastEventId')).toBe('AQID')
    expect(resumed.searchParams.has('since')).toBe(false)
  })

  it('backs off reconnects up to 10 s', () => {
    expect([0, 1, 2, 3, 10].map(reconnectDelayMs)).toEqual([500, 1000, 2000, 4000, 10_000])
  })
})
