// Rules, detections and readings shared by the rules tests.
import { randomUUID } from 'node:crypto'
import type { Rule } from '@intellisite/alert-rules'
import { type Alert, detectionId } from '@intellisite/detections-store'
import type { Registry } from 'prom-client'
import { expect } from 'vitest'
import {
  committedCount,
  type DetectionFixture,
  type Pipeline,
  parseAlerts,
  produce,
  readTopic,
  waitFor,
} from '../helpers.js'

export function rule(overrides: Partial<Rule> = {}): Rule {
  return {
    id: randomUUID(),
    version: 1,
    name: 'subarus',
    owner: 'user-1',
    scope: 'private',
    enabled: true,
    watchlist: false,
    match: { make: ['Subaru'] },
    entries: [],
    ...overrides,
  }
}

export const vehicle = (Make: string, Model: string, Category: string, Year = 2015): DetectionFixture => ({
  Year,
  Make,
  Model,
  Category,
})

/** The sum of a metric's values, as a scrape would read them. */
export async function metricValue(registry: Registry, name: string): Promise<number> {
  const metric = registry.getSingleMetric(name)
  if (!metric) throw new Error(`no metric ${name}`)
  return (await metric.get()).values.reduce((sum, v) => sum + v.value, 0)
}

/** Waits until an indexer has applied `count` valid rule records in all. */
export async function rulesApplied(registry: Registry, count: number): Promise<void> {
  await waitFor(async () => (await metricValue(registry, 'indexer_rule_records_applied_total')) >= count, {
    what: `${count} rule records applied`,
  })
}

/**
 * Produces detections and waits until the group has committed them (so they were classified with
 * the rules held at that moment). Returns their detection ids.
 */
export async function indexed(pipeline: Pipeline, fixtures: readonly DetectionFixture[]): Promise<string[]> {
  const before = await committedCount(pipeline)
  const produced = await produce(
    pipeline.kafka,
    pipeline.topics.detections,
    fixtures.map((d) => JSON.stringify(d)),
  )
  await waitFor(async () => (await committedCount(pipeline)) === before + fixtures.length, {
    what: `${fixtures.length} more detections committed`,
  })
  return produced.map((p) => detectionId({ topic: pipeline.topics.detections, ...p }))
}

/** Every alert on the pipeline's alerts topic (exactly `count` of them), by detection id. */
export async function alertsById(pipeline: Pipeline, count: number): Promise<Map<string, Alert>> {
  const alerts = parseAlerts(await readTopic(pipeline.kafka, pipeline.topics.alerts, count))
  expect(alerts).toHaveLength(count)
  return new Map(alerts.map((alert) => [alert.id, alert]))
}
