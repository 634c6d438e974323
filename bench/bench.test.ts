// CI smoke run of `pnpm bench --tiny` (every default section but the API on FerretDB): each runs end to end and
// prints its table with numbers, so the benchmarks cannot rot unnoticed. The figures themselves are
// not judged here (tiny sizes on a shared machine); only that they exist and are plausible.
import { spawn } from 'node:child_process'
import { expect, it } from 'vitest'
import { TS_NODE_FLAGS } from '../test/support/node-flags.js'
import { cell, numberIn, ON_REQUEST, parseTables, SECTIONS, type Section, type Table } from './run.js'

const root = new URL('..', import.meta.url).pathname

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...TS_NODE_FLAGS, 'bench/run.ts', ...args], {
      cwd: root,
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
    })
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** The text of the report's `## <prefix>…` section, up to the next `## `. */
function section(report: string, prefix: string): string {
  const parts = report.split(/^## /m)
  const found = parts.find((part) => part.startsWith(prefix))
  if (!found) throw new Error(`no section "${prefix}" in the report:\n${report}`)
  return found
}

function table(text: string, column: string): Table {
  const found = parseTables(text).find((t) => t.header.some((h) => h.includes(column)))
  if (!found) throw new Error(`no table with a "${column}" column in:\n${text}`)
  return found
}

function positive(t: Table, row: string[], column: string): number {
  const value = numberIn(cell(t, row, column))
  expect(value, `${column} in ${row.join(' | ')}`).toBeGreaterThan(0)
  return value
}

/**
 * Every section of the default run but two: the API on FerretDB (the API section's script with
 * `--store mongodb`: a minute and a half of FerretDB's full scans at any size) and rule change to
 * first match (the path test/e2e/rules.test.ts takes, timed).
 */
const SMOKE: readonly Section[] = SECTIONS.filter(
  (s) => !ON_REQUEST.includes(s) && s !== 'api-ferretdb' && s !== 'rule-change',
)

it('pnpm bench --tiny prints every section with numeric results', { timeout: 300_000 }, async () => {
  const { code, stdout, stderr } = await runBench(['--tiny', '--only', SMOKE.join(',')])
  expect(code, stderr.slice(-4000)).toBe(0)
  expect(stdout).toMatch(/^- commit: \w+/m)
  expect(stdout).toMatch(/^- machine: \d+ CPUs/m)

  const ingest = table(section(stdout, '1. Ingest'), 'raw det/s')
  const ingestMedian = ingest.rows.find((row) => row[0]?.includes('median'))!
  positive(ingest, ingestMedian, 'indexer det/s')
  positive(ingest, ingestMedian, 'raw det/s')
  // What alert rules cost, beside the built-in rule alone, and the matcher alone.
  const rules = table(section(stdout, '1. Ingest'), '÷ built-in only')
  const rulesMedians = rules.rows.filter((row) => row[0]?.includes('median'))
  expect(rulesMedians.map((row) => cell(rules, row, 'rules'))).toEqual([
    'built-in rule only',
    '1,000 rules',
    '1,000 narrow rules',
    '1,000 rules matching nothing',
    'watch list of 100,000 entries',
    '3 rules matching every detection',
  ])
  for (const row of rulesMedians) positive(rules, row, 'det/s')
  expect(section(stdout, '1. Ingest')).toMatch(
    /1,000 rules ÷ 3 rules matching every detection, .*\(median \d+\.\d\d\)/,
  )
  const matcher = table(section(stdout, '1. Ingest'), 'matches/s')
  expect(matcher.rows).toHaveLength(6)
  for (const row of matcher.rows) positive(matcher, row, 'matches/s')

  const refs = table(section(stdout, '1b. Ingest references'), 'consume-only')
  const refsMedian = refs.rows.find((row) => row[0]?.includes('median'))!
  for (const column of ['consume-only', 'naive', 'indexer process det/s', 'peak RSS']) {
    positive(refs, refsMedian, column)
  }

  const apiText = section(stdout, '2. API')
  const api = table(apiText, 'p50 ms')
  const cases = api.rows.map((row) => cell(api, row, 'case'))
  for (const expected of [
    'floor',
    'first page',
    'skip=',
    'cursor at',
    'make=mazda',
    'category=suv',
    '/stats (make)',
    'group_by=year',
    '/stats/timeseries 24 h of minutes',
    'pg only: cursor page',
  ]) {
    expect(
      cases.some((c) => c?.includes(expected)),
      expected,
    ).toBe(true)
  }
  // /stats at two detection counts, to show that it stays flat.
  const statsSizes = new Set(api.rows.filter((row) => row[1]?.includes('/stats')).map((row) => row[0]))
  expect(statsSizes.size).toBe(2)
  for (const row of api.rows) {
    positive(api, row, 'req/s')
    expect(Number.isFinite(numberIn(cell(api, row, 'p99 ms'))), row.join('|')).toBe(true)
    expect(numberIn(cell(api, row, 'non-2xx')), row.join('|')).toBe(0)
  }
  expect(apiText).toMatch(/API process peak RSS \(VmHWM\): \d+ MiB/)
  expect(apiText).toMatch(/API process RSS after each size \(VmRSS\): \d+: \d+ MiB, \d+: \d+ MiB/)

  // Ours, the naive reference and the bare write loop, side by side.
  const alerts = table(section(stdout, '3. Alerts'), 'server RSS')
  const fanOuts = alerts.rows.map((row) => cell(alerts, row, 'fan-out') ?? '')
  expect(fanOuts.slice(0, 2)).toEqual(['ours', 'naive'])
  expect(fanOuts[2]).toMatch(/^bare write loop/)
  for (const row of alerts.rows) {
    positive(alerts, row, 'p50 ms')
    if (cell(alerts, row, 'fan-out')?.startsWith('bare write loop')) continue
    positive(alerts, row, 'delivered')
    expect(Number.isFinite(numberIn(cell(alerts, row, 'p99 ms')))).toBe(true)
    positive(alerts, row, 'server RSS')
    positive(alerts, row, 'client CPU')
  }

  // The notifier and the naive sender, side by side, every burst delivered.
  const webhooks = table(section(stdout, '3b. Webhooks'), 'deliveries/s')
  expect(webhooks.rows.map((row) => cell(webhooks, row, 'sender'))).toEqual([
    'notifier',
    'naive (await each POST)',
  ])
  for (const row of webhooks.rows) {
    positive(webhooks, row, 'deliveries/s')
    positive(webhooks, row, 'p50 ms')
  }

  const summary = table(section(stdout, 'Ingest summary'), '÷ min(a, b)')
  expect(summary.rows).toHaveLength(5)
  for (const row of summary.rows) positive(summary, row, 'det/s')
  const resources = table(section(stdout, 'Resources'), 'MiB')
  expect(resources.rows.map((row) => row[0]?.split(' ')[0])).toEqual(
    expect.arrayContaining(['indexer', 'API']),
  )
  for (const row of resources.rows) positive(resources, row, 'MiB')
})
