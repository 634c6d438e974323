// What one stream's reader gets of an alert (pure: no Kafka, no sockets): the make, category and
// rule filters, visibility through alertForReader, and the frames shared among readers.
import { BUILTIN_RULE_ID } from '@intellisite/alert-rules'
import type { Alert, AlertRule } from '@intellisite/detections-store'
import { describe, expect, it } from 'vitest'
import { createAlertEntry } from '../../src/alerts/alert-entry.js'
import { createAlertSelection, createStreamReader, ruleIds } from '../../src/alerts/alert-reader.js'
import { encodeResumeToken } from '../../src/alerts/resume-token.js'

const builtin: AlertRule = { id: BUILTIN_RULE_ID, version: 1, name: 'SUSPICIOUS_VEHICLE', scope: 'shared' }
const ofA: AlertRule = { id: 'rule-a', version: 3, name: 'A watch list', scope: 'private', owner: 'user-a' }
const ofB: AlertRule = { id: 'rule-b', version: 1, name: 'B secret list', scope: 'private', owner: 'user-b' }
const sharedByAdmin: AlertRule = { id: 'rule-s', version: 2, name: 'fleet', scope: 'shared' }

let offset = 0
function entry(rules: AlertRule[] | undefined, overrides: Partial<Alert> = {}) {
  const alert: Alert = {
    id: `a${offset}`,
    detectedAt: new Date(0).toISOString(),
    year: 2020,
    make: 'Toyota',
    model: 'RAV4',
    category: 'SUV',
    reason:
      rules?.[0]?.id === BUILTIN_RULE_ID || !rules
        ? 'category matches SUV'
        : `matches rule ${rules[0]!.name}`,
    ...(rules ? { rules } : {}),
    ...overrides,
  }
  offset++
  return createAlertEntry(0, offset - 1, alert, [offset])
}

const reader = (userId: string, query: Parameters<typeof createAlertSelection>[0] = {}) =>
  createStreamReader(userId, createAlertSelection(query))

/** The alert JSON a frame carries. */
const dataOf = (frame: Buffer | null) =>
  frame === null ? null : (JSON.parse(/\ndata: (.*)\n/.exec(frame.toString())![1]!) as Alert)

describe('alert selection', () => {
  it('matches makes case-insensitively and category tokens like the built-in rule', () => {
    const { matches } = createAlertSelection({ make: 'Toyota, MAZDA', category: 'pickup' })
    const keys = (makeKey: string, categoryKeys: string[]) => ({ makeKey, categoryKeys })
    expect(matches!(keys('toyota', ['suv', 'pickup']))).toBe(true)
    expect(matches!(keys('mazda', ['pickup']))).toBe(true)
    expect(matches!(keys('toyota', ['suv']))).toBe(false)
    expect(matches!(keys('ford', ['pickup']))).toBe(false)
    expect(createAlertSelection({}).matches).toBeNull()
    expect(createAlertSelection({}).key).toBe('')
    expect(createAlertSelection({ make: 'A,b' }).key).toBe(createAlertSelection({ make: 'B, a' }).key)
  })

  it('takes rule ids repeated or comma-separated, and keys streams by the rule set too', () => {
    expect(ruleIds(['r1, r2', 'r3', ' ,'])).toEqual(['r1', 'r2', 'r3'])
    expect(ruleIds('r1')).toEqual(['r1'])
    const both = createAlertSelection({ rule: ['r2', 'r1,r2'] })
    expect([...both.rules!].sort()).toEqual(['r1', 'r2'])
    expect(both.key).toBe(createAlertSelection({ rule: 'r1,r2' }).key)
    expect(both.key).not.toBe(createAlertSelection({ rule: 'r1' }).key)
    expect(both.key).not.toBe(createAlertSelection({ make: 'r1,r2' }).key)
    expect(createAlertSelection({}).rules).toBeUndefined()
  })
})

describe('stream reader', () => {
  it('gives an alert of a private rule to its owner only, without the owner', () => {
    const e = entry([ofA])
    expect(reader('user-b').frame(e)).toBeNull()
    const shown = dataOf(reader('user-a').frame(e))
    expect(shown?.rules).toEqual([{ id: 'rule-a', version: 3, name: 'A watch list', scope: 'private' }])
    expect(JSON.stringify(shown)).not.toContain('user-a')
  })

  it('shows each owner only their own rule of an alert that matched several private ones', () => {
    const e = entry([ofB, ofA])
    const forA = dataOf(reader('user-a').frame(e))
    const forB = dataOf(reader('user-b').frame(e))
    expect(forA?.rules?.map((r) => r.id)).toEqual(['rule-a'])
    expect(forA?.reason).toBe('matches rule A watch list')
    expect(forB?.rules?.map((r) => r.id)).toEqual(['rule-b'])
    expect(forB?.reason).toBe('matches rule B secret list')
    for (const text of [JSON.stringify(forA), reader('user-a').frame(e)!.toString()]) {
      expect(text).not.toContain('secret')
      expect(text).not.toContain('rule-b')
    }
    expect(reader('user-c').frame(e)).toBeNull()
  })

  it('frames an alert everyone sees alike once for all, and a private one once per way of seeing it', () => {
    const shared = entry([builtin, sharedByAdmin])
    expect(shared.sharedByAll).toBe(true)
    expect(reader('user-a').frame(shared)).toBe(reader('user-b', { make: 'toyota' }).frame(shared))
    const legacy = entry(undefined)
    expect(legacy.sharedByAll).toBe(true)
    expect(dataOf(reader('anyone').frame(legacy))?.rules).toEqual([builtin])

    const mixed = entry([builtin, ofA])
    expect(mixed.sharedByAll).toBe(false)
    const forA = reader('user-a').frame(mixed)
    const forB = reader('user-b').frame(mixed)
    const forC = reader('user-c').frame(mixed)
    expect(forB).toBe(forC)
    expect(forA).not.toBe(forB)
    expect(dataOf(forA)?.rules?.map((r) => r.id)).toEqual([BUILTIN_RULE_ID, 'rule-a'])
    expect(dataOf(forB)?.rules?.map((r) => r.id)).toEqual([BUILTIN_RULE_ID])
    expect(dataOf(forB)?.reason).toBe('category matches SUV')
    // Frames carry the entry's shared resume id.
    expect(forA!.toString()).toMatch(/^id: \S+\n/)
    expect(forA!.toString().split('\n')[0]).toBe(forB!.toString().split('\n')[0])
  })

  it('reuses the shared frame only at the entry own position, and re-encodes the id elsewhere', () => {
    const e = entry([builtin, ofA])
    const forA = reader('user-a')
    expect(forA.frameAt(e, e.position)).toBe(forA.frame(e))
    const elsewhere = forA.frameAt(e, [e.offset + 1, 7])!
    expect(elsewhere.toString().split('\n')[0]).toBe(`id: ${encodeResumeToken([e.offset + 1, 7])}`)
    expect(dataOf(elsewhere)).toEqual(dataOf(forA.frame(e)))
    expect(reader('user-b', { rule: 'rule-a' }).frameAt(e, [0, 0])).toBeNull()
  })

  it('frames a resuming stream from its position: every entry moves it, seen or not, and ids follow it', () => {
    const at = (partition: number, offset: number, make: string) =>
      createAlertEntry(partition, offset, { ...entry([builtin]).alert, make }, [])
    const entries = [at(0, 4, 'Toyota'), at(1, 9, 'Mazda'), at(0, 5, 'Mazda'), at(1, 10, 'Toyota')]
    const position = [5, 9]
    const frames = reader('user-a', { make: 'toyota' }).framesFrom(entries, position)
    // Partition 0 offset 4 is behind the stream; the Mazdas are skipped but still move it.
    expect(position).toEqual([6, 11])
    expect(frames.map((frame) => frame.toString().split('\n')[0])).toEqual([
      `id: ${encodeResumeToken([6, 11])}`,
    ])
  })

  it('filters on rules among the visible ones: an invisible or unknown id matches nothing', () => {
    const mine = entry([ofA])
    const mixed = entry([builtin, ofA])
    const plain = entry([builtin])
    const onlyA = reader('user-a', { rule: 'rule-a' })
    expect(onlyA.frame(mine)).not.toBeNull()
    expect(onlyA.frame(mixed)).not.toBeNull()
    expect(onlyA.frame(plain)).toBeNull()
    const snooping = reader('user-b', { rule: 'rule-a' })
    for (const e of [mine, mixed, plain]) expect(snooping.frame(e)).toBeNull()
    expect(reader('user-b', { rule: 'no-such-rule' }).frame(plain)).toBeNull()
    expect(reader('user-b', { rule: ['rule-a', BUILTIN_RULE_ID] }).frame(mixed)).not.toBeNull()
    // With make and category filters as well: all must hold.
    expect(reader('user-a', { rule: 'rule-a', make: 'mazda' }).frame(mine)).toBeNull()
    expect(reader('user-a', { rule: 'rule-a', category: 'suv' }).frame(mine)).not.toBeNull()
  })
})
