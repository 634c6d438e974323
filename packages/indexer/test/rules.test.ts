// Alert rules as the indexer applies them: records on the rules changelog (written here as the API
// writes them) change which detections alert, while it runs, across restarts, and whatever else
// lands on the topic.
import { randomUUID } from 'node:crypto'
import {
  BUILTIN_RULE_ID,
  builtinRule,
  type Rule,
  ruleRecord,
  ruleTombstone,
  type WatchEntry,
} from '@intellisite/alert-rules'
import { describe, expect, it } from 'vitest'
import { createPipeline, createTopics, publishRules, startIndexer } from './helpers.js'
import { alertsById, indexed, metricValue, rule, rulesApplied, vehicle } from './support/rules.js'

const BUILTIN = { id: BUILTIN_RULE_ID, version: 1, name: 'SUSPICIOUS_VEHICLE', scope: 'shared' }
const ref = (r: Rule) => ({
  id: r.id,
  version: r.version,
  name: r.name,
  scope: r.scope,
  ...(r.scope === 'private' && r.owner !== null && { owner: r.owner }),
})

describe('alert rules from the changelog', () => {
  it("alerts on a private rule's make only, naming the rule, its version and its owner", async () => {
    const pipeline = await createPipeline()
    const { registry } = await startIndexer(pipeline)
    const subarus = rule({ name: 'my subarus', owner: 'user-7' })
    await publishRules(pipeline, [ruleRecord(subarus)])
    await rulesApplied(registry, 1)

    const [outback, camry, forester, rav4] = await indexed(pipeline, [
      vehicle('Subaru', 'Outback', 'Wagon'),
      vehicle('Toyota', 'Camry', 'Sedan'),
      vehicle('SUBARU', 'Forester', 'SUV'),
      vehicle('Toyota', 'RAV4', 'SUV'),
    ])
    const alerts = await alertsById(pipeline, 3)
    expect(alerts.get(outback!)).toMatchObject({
      make: 'Subaru',
      reason: 'matches rule my subarus',
      rules: [{ id: subarus.id, version: 1, name: 'my subarus', scope: 'private', owner: 'user-7' }],
    })
    expect(alerts.has(camry!)).toBe(false)
    // The built-in rule first, and its reason, as it has always read.
    expect(alerts.get(forester!)).toMatchObject({
      reason: 'category matches SUV',
      rules: [BUILTIN, ref(subarus)],
    })
    expect(alerts.get(rav4!)?.rules).toEqual([BUILTIN])
    // `suspicious` keeps meaning "an alert was raised".
    expect((await pipeline.store.storedDocument(outback!))?.suspicious).toBe(true)
    expect((await pipeline.store.storedDocument(camry!))?.suspicious).toBe(false)
    expect(await metricValue(registry, 'indexer_rules')).toBe(2)
  })

  it('applies new versions and deletions while running: later detections follow them', async () => {
    const pipeline = await createPipeline()
    const { registry } = await startIndexer(pipeline)
    const v1 = rule()
    await publishRules(pipeline, [ruleRecord(v1)])
    await rulesApplied(registry, 1)
    const [old1, new1] = await indexed(pipeline, [
      vehicle('Subaru', 'Legacy', 'Sedan', 2010),
      vehicle('Subaru', 'Legacy', 'Sedan', 2021),
    ])

    // A PATCH narrowing the rule: only Subarus from 2020.
    const v2 = { ...v1, version: 2, match: { make: ['Subaru'], year: { min: 2020 } } }
    await publishRules(pipeline, [ruleRecord(v2)])
    await rulesApplied(registry, 2)
    const [old2, new2] = await indexed(pipeline, [
      vehicle('Subaru', 'Legacy', 'Sedan', 2010),
      vehicle('Subaru', 'Legacy', 'Sedan', 2021),
    ])

    // An older version delivered late changes nothing.
    await publishRules(pipeline, [ruleRecord(v1)])
    await rulesApplied(registry, 3)
    const [old3, new3] = await indexed(pipeline, [
      vehicle('Subaru', 'Legacy', 'Sedan', 2010),
      vehicle('Subaru', 'Legacy', 'Sedan', 2021),
    ])

    await publishRules(pipeline, [ruleTombstone(v1.id)])
    await rulesApplied(registry, 4)
    const [old4, new4] = await indexed(pipeline, [
      vehicle('Subaru', 'Legacy', 'Sedan', 2010),
      vehicle('Subaru', 'Legacy', 'Sedan', 2021),
    ])

    const alerts = await alertsById(pipeline, 4)
    expect(alerts.get(old1!)?.rules).toEqual([ref(v1)])
    expect(alerts.get(new1!)?.rules).toEqual([ref(v1)])
    expect(alerts.has(old2!)).toBe(false)
    expect(alerts.get(new2!)?.rules).toEqual([ref(v2)])
    expect(alerts.has(old3!)).toBe(false)
    expect(alerts.get(new3!)?.rules).toEqual([ref(v2)])
    expect(alerts.has(old4!)).toBe(false)
    expect(alerts.has(new4!)).toBe(false)
    expect(await metricValue(registry, 'indexer_rules')).toBe(1)
  })

  it('reloads the rules after a restart: the newest version of each, deleted ones gone', async () => {
    const pipeline = await createPipeline()
    const first = await startIndexer(pipeline)
    const narrowed = rule({ name: 'new subarus' })
    const deleted = rule({ name: 'toyotas', match: { make: ['Toyota'] } })
    await publishRules(pipeline, [
      ruleRecord(narrowed),
      ruleRecord(deleted),
      ruleRecord({ ...narrowed, version: 2, match: { make: ['Subaru'], year: { min: 2020 } } }),
      ruleTombstone(deleted.id),
    ])
    await rulesApplied(first.registry, 4)
    await first.stop()

    const second = await startIndexer(pipeline)
    expect(await metricValue(second.registry, 'indexer_rules')).toBe(2)
    const [oldSubaru, newSubaru, toyota] = await indexed(pipeline, [
      vehicle('Subaru', 'Legacy', 'Sedan', 2010),
      vehicle('Subaru', 'Legacy', 'Sedan', 2021),
      vehicle('Toyota', 'Camry', 'Sedan', 2021),
    ])
    const alerts = await alertsById(pipeline, 1)
    expect(alerts.get(newSubaru!)?.rules).toEqual([{ ...ref(narrowed), version: 2 }])
    expect(alerts.has(oldSubaru!)).toBe(false)
    expect(alerts.has(toyota!)).toBe(false)
  })

  it('skips and counts records it cannot take, the built-in rule included, and goes on', async () => {
    const pipeline = await createPipeline()
    await createTopics(pipeline)
    const hijack = {
      ...builtinRule('SUV'),
      version: 2,
      match: { category: ['Sedan'] },
    }
    const subarus = rule()
    // (A compacted topic refuses records without a key: the broker sees to that one.)
    await publishRules(pipeline, [
      { key: randomUUID(), value: 'not json' },
      ruleRecord(hijack),
      ruleTombstone(BUILTIN_RULE_ID),
    ])
    const { registry } = await startIndexer(pipeline)
    expect(await metricValue(registry, 'indexer_rule_records_invalid_total')).toBe(3)

    // Still following the topic after them.
    await publishRules(pipeline, [{ key: subarus.id, value: '{"format":99}' }, ruleRecord(subarus)])
    await rulesApplied(registry, 1)
    expect(await metricValue(registry, 'indexer_rule_records_invalid_total')).toBe(4)
    const [legacy, camry, rav4] = await indexed(pipeline, [
      vehicle('Subaru', 'Legacy', 'Sedan'),
      vehicle('Toyota', 'Camry', 'Sedan'),
      vehicle('Toyota', 'RAV4', 'SUV'),
    ])
    const alerts = await alertsById(pipeline, 2)
    expect(alerts.get(legacy!)?.rules).toEqual([ref(subarus)])
    expect(alerts.has(camry!)).toBe(false)
    expect(alerts.get(rav4!)).toMatchObject({ reason: 'category matches SUV', rules: [BUILTIN] })
  })

  it('loads a watch list of 100,000 entries sent as one gzip-compressed record, and matches it', async () => {
    const pipeline = await createPipeline()
    await createTopics(pipeline)
    const entries: WatchEntry[] = Array.from({ length: 100_000 }, (_, i) => ({
      make: `Make ${i % 500}`,
      model: `Model ${i}`,
    }))
    entries[12_345] = { make: 'Toyota', model: 'Land Cruiser', yearMin: 2000, yearMax: 2005 }
    entries[99_999] = { make: 'Jeep', model: 'Wrangler' }
    const stolen = rule({ name: 'stolen', watchlist: true, match: {}, entries })
    const record = ruleRecord(stolen)
    expect(record.value!.length).toBeGreaterThan(2 * 1024 * 1024)
    await publishRules(pipeline, [record])

    const { registry } = await startIndexer(pipeline)
    expect(await metricValue(registry, 'indexer_rule_watchlist_entries')).toBe(100_000)
    const [cruiser, newCruiser, wrangler, listed, unlisted] = await indexed(pipeline, [
      vehicle('TOYOTA', 'land cruiser', 'SUV', 2003),
      vehicle('Toyota', 'Land Cruiser', 'SUV', 2010),
      vehicle('Jeep', 'Wrangler', 'Convertible', 1999),
      vehicle('Make 7', 'Model 50007', 'Sedan'),
      vehicle('Make 7', 'Model 50008', 'Sedan'),
    ])
    const alerts = await alertsById(pipeline, 4)
    expect(alerts.get(cruiser!)?.rules).toEqual([BUILTIN, ref(stolen)])
    expect(alerts.get(newCruiser!)?.rules).toEqual([BUILTIN])
    expect(alerts.get(wrangler!)).toMatchObject({ reason: 'matches rule stolen', rules: [ref(stolen)] })
    expect(alerts.get(listed!)?.rules).toEqual([ref(stolen)])
    expect(alerts.has(unlisted!)).toBe(false)
  })
})
