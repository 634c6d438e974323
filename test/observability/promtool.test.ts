// The services' /metrics as Prometheus's own linter reads them (promtool, Debian's prometheus
// package). prom-client's default process metrics include three gauges named `*_total`
// (nodejs_active_handles_total, …), which promtool flags; they are kept for their dashboards'
// sake (see docs/observability.md) and are the only findings allowed.
import { execFileSync, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { createTestApp } from '../../packages/api/test/helper.js'
import { createIndexerMetrics } from '../../packages/indexer/src/metrics.js'

const ensure = fileURLToPath(new URL('../../scripts/debian/ensure.sh', import.meta.url))
const ALLOWED =
  /^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/

function promtoolFindings(exposition: string): string[] {
  const promtool = execFileSync('bash', [ensure, 'promtool', 'prometheus'], { encoding: 'utf8' }).trim()
  const result = spawnSync(promtool, ['check', 'metrics'], { input: exposition, encoding: 'utf8' })
  expect(result.error).toBeUndefined()
  return `${result.stdout}\n${result.stderr}`.split('\n').filter((line) => line.trim() !== '')
}

describe('metrics under promtool check metrics', () => {
  it('the indexer: only the default gauges named *_total are flagged', async () => {
    const registry = new Registry()
    collectDefaultMetrics({ register: registry })
    const metrics = createIndexerMetrics(registry)
    metrics.consumed(3)
    metrics.batchCommitted(
      { inserted: 0, duplicates: 0 },
      { alertCount: 0, deadLetterCodes: ['INVALID_JSON'] },
    )
    metrics.recordProgress('detections', 0, { lagMessages: 1, lastTimestamp: Date.now() })
    const findings = promtoolFindings(await registry.metrics())
    // The linter did run: it found the known default gauges.
    expect(findings.filter((line) => ALLOWED.test(line))).toHaveLength(3)
    expect(findings.filter((line) => !ALLOWED.test(line))).toEqual([])
  })

  it('the API: only the default gauges named *_total are flagged', async () => {
    const t = await createTestApp()
    try {
      await t.inject({ method: 'GET', url: '/detections' })
      const exposition = (await t.inject({ method: 'GET', url: '/metrics' })).body
      const findings = promtoolFindings(exposition)
      expect(findings.filter((line) => ALLOWED.test(line))).toHaveLength(3)
      expect(findings.filter((line) => !ALLOWED.test(line))).toEqual([])
    } finally {
      await t.close()
    }
  })
})
