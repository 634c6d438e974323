// The bytes of an alert on the alerts topic are a contract: the API, the notifier and consumers
// outside the system parse them, and a replayed partition must carry the same bytes as the first
// pass. The indexer writes the JSON field by field (each rule's JSON once per rule version), so
// these tests pin it to a literal and to `JSON.stringify(buildAlert(…))` on many detections.
import { randomUUID } from 'node:crypto'
import { builtinRule, createRuleIndex, type Rule } from '@intellisite/alert-rules'
import { buildAlert, detectionId } from '@intellisite/detections-store'
import { describe, expect, it } from 'vitest'
import { type ClassifyOptions, classifyRecords, type SourceRecord } from '../src/batch/classify-records.js'

const TIMESTAMP = 1_700_000_000_000

function rule(id: string, fields: Partial<Rule> & Pick<Rule, 'match'>): Rule {
  return {
    id,
    version: 1,
    name: `rule ${id}`,
    owner: null,
    scope: 'shared',
    enabled: true,
    watchlist: false,
    entries: [],
    ...fields,
  }
}

function record(offset: number, detection: { Year: number; Make: string; Model: string; Category: string }) {
  return {
    offset: String(offset),
    timestamp: String(TIMESTAMP + offset),
    key: null,
    value: Buffer.from(JSON.stringify(detection)),
  } satisfies SourceRecord
}

const options = (match: ClassifyOptions['match']): ClassifyOptions => ({
  topic: 'detections',
  partition: 4,
  match,
  maxMessageBytes: 65_536,
  alertsPartitions: 3,
  dlqPartitions: 3,
})

describe('the alert message', () => {
  it('has the same key, partition and bytes as ever', () => {
    const index = createRuleIndex()
    index.upsert(builtinRule('SUV'))
    index.upsert(
      rule('20000000-0000-4000-8000-00000000000a', {
        version: 3,
        name: '"quoted" \\ naïve ✓\u2028',
        owner: 'user-7',
        scope: 'private',
        match: { make: ['mazda'] },
      }),
    )
    index.upsert(rule('20000000-0000-4000-8000-00000000000b', { match: { year: { min: 2011, max: 2011 } } }))
    const source = record(42, { Year: 2011, Make: 'MAZDA', Model: 'CX-9', Category: 'Wagon, SUV' })

    const [alert] = classifyRecords([source], options(index.match)).alerts
    const id = detectionId({ topic: 'detections', partition: 4, offset: 42, timestamp: TIMESTAMP + 42 })
    expect(alert?.message.key).toBe(id)
    expect(alert?.message.partition).toBe(1)
    expect(alert?.message.value).toBe(
      `{"id":"${id}","detectedAt":"2023-11-14T22:13:20.042Z","year":2011,"make":"MAZDA","model":"CX-9",` +
        '"category":"Wagon, SUV","reason":"category matches SUV","rules":[' +
        '{"id":"00000000-0000-4000-8000-000000000001","version":1,"name":"SUSPICIOUS_VEHICLE","scope":"shared"},' +
        '{"id":"20000000-0000-4000-8000-00000000000a","version":3,"name":"\\"quoted\\" \\\\ naïve ✓\u2028",' +
        '"scope":"private","owner":"user-7"},' +
        '{"id":"20000000-0000-4000-8000-00000000000b","version":1,"name":"rule 20000000-0000-4000-8000-00000000000b","scope":"shared"}]}',
    )
  })

  it('is JSON.stringify of the alert, across detections, rule sets and rule versions', () => {
    const makes = ['Toyota', 'MAZDA', 'smart', 'Škoda', 'Land "Rover"']
    const models = ['RAV4', 'CX-9', 'fortwo', 'Octavia\t', 'Defender\\110']
    const categories = ['SUV', 'Wagon, SUV', 'Sedan', 'Van/Minivan', 'SUV, Pickup']
    const pick = <T>(items: readonly T[], i: number) => items[i % items.length]!
    const rules = Array.from({ length: 40 }, (_, i) =>
      rule(randomUUID(), {
        name: `${pick(['stolen', 'wanted «', 'fleet\n', '🚗 watch'], i)} ${i}`,
        owner: i % 3 ? `user-${i}` : null,
        scope: i % 3 ? 'private' : 'shared',
        match:
          i % 2
            ? { make: [pick(makes, i)], year: { min: 2000 + (i % 20), max: 2010 + (i % 20) } }
            : { category: [pick(categories, i)] },
      }),
    )
    const index = createRuleIndex()
    index.upsert(builtinRule('SUV'))
    for (const r of rules) index.upsert(r)
    const records = Array.from({ length: 3_000 }, (_, i) =>
      record(i, {
        Year: 1995 + ((i * 7) % 30),
        Make: pick(makes, i * 3),
        Model: pick(models, i),
        Category: pick(categories, i * 11),
      }),
    )

    const expectSameBytes = () => {
      const classified = classifyRecords(records, options(index.match))
      const documents = new Map(classified.documents.map((document) => [document._id, document]))
      const { alerts } = classified
      expect(alerts.length).toBeGreaterThan(1_000)
      for (const { message } of alerts) {
        const document = documents.get(message.key as string)!
        const matches = index.match(document)!
        expect(message.value).toBe(JSON.stringify(buildAlert(document, matches.reason, matches.rules)))
      }
      return alerts
    }

    expectSameBytes()
    // A new version of a rule, renamed and now shared: its alerts carry the new version's JSON.
    const renamed = { ...rules[1]!, version: 2, name: 'renamed', owner: null, scope: 'shared' as const }
    index.upsert(renamed)
    const values = expectSameBytes().map(({ message }) => String(message.value))
    expect(values.some((value) => value.includes(JSON.stringify(renamed.name)))).toBe(true)
    expect(values.some((value) => value.includes(JSON.stringify(rules[1]!.name)))).toBe(false)
  })
})
