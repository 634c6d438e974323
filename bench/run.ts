// `pnpm bench`: every benchmark against the local services, one section after the
// other (each its own process, so none inherits another's heap or event loop), then one report.
//
//   pnpm bench                          # default sizes, < 15 min on 2 cores
//   pnpm bench --tiny                   # smoke sizes (CI: bench/bench.test.ts)
//   pnpm bench --only ingest,api        # sections: ingest (with references), references, api, api-ferretdb, alerts
//   pnpm bench --only storm             # kill storm: 100k detections, 10 SIGKILLs (not in the default run)
//   pnpm bench --only soak              # soak: 10 min, 1,000 SSE clients (not in the default run)
//   pnpm bench --only replicas          # SSE through HAProxy: 1 vs 2 replicas, reconnect herd (not in the default run)
//   pnpm bench --only webhooks          # webhook delivery to 100 loopback endpoints, beside a naive sender
//   pnpm bench --only rule-change       # rule change → first alert (in the default run, not in the suite's smoke run)
//   options: --size N (ingest backlog) --naive-size N --rounds R --api-docs N --api-stats-docs N
//            --alerts-clients 1000,10000 --alerts-seconds S --alerts-fanouts ours,naive
//            --alerts-churn none,reconnect,stall --out report.md
//            --storm-count N --storm-kills K --duration MINUTES (soak) --soak-clients N --soak-store postgres|mongodb
//
// Section scripts print their own notes and markdown tables on stdout (progress on stderr); this
// runner keeps them verbatim and adds a header, an ingest summary (ratios against the references)
// and the peak memory of the indexer and API processes that the sections report.
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { parseArgs } from 'node:util'
import { startServices } from '../scripts/services/services-env.js'
import { TS_NODE_FLAGS } from '../test/support/node-flags.js'

const root = new URL('..', import.meta.url).pathname

export const SECTIONS = [
  'ingest',
  'references',
  'api',
  'api-ferretdb',
  'alerts',
  'webhooks',
  'rule-change',
  'storm',
  'soak',
  'replicas',
] as const
export type Section = (typeof SECTIONS)[number]
/** Long-running: run only when named with --only. */
export const ON_REQUEST: readonly Section[] = ['storm', 'soak', 'replicas']

export interface Table {
  header: string[]
  rows: string[][]
}

/** Every markdown table in `text` (a header line, a `|---|` line, then rows). */
export function parseTables(text: string): Table[] {
  const tables: Table[] = []
  const lines = text.split('\n')
  const cells = (line: string) =>
    line
      .trim()
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((cell) => cell.trim())
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i]!.trim().startsWith('|') || !/^\|[\s:|-]+\|$/.test(lines[i + 1]!.trim())) continue
    const table: Table = { header: cells(lines[i]!), rows: [] }
    let j = i + 2
    for (; j < lines.length && lines[j]!.trim().startsWith('|'); j++) table.rows.push(cells(lines[j]!))
    tables.push(table)
    i = j - 1
  }
  return tables
}

/** The first number in a cell (`12.5`, `137 MiB`, `1000 (2.1 s)`), NaN when there is none. */
export function numberIn(cell: string | undefined): number {
  const match = /-?\d+(\.\d+)?(e[+-]?\d+)?/i.exec(cell ?? '')
  return match ? Number(match[0]) : Number.NaN
}

/** The cell of `row` under the first header containing `column` (case-insensitive). */
export function cell(table: Table, row: string[], column: string): string | undefined {
  const index = table.header.findIndex((h) => h.toLowerCase().includes(column.toLowerCase()))
  return index < 0 ? undefined : row[index]
}

const medianRow = (table: Table | undefined) => table?.rows.find((row) => row[0]?.includes('median'))
const findTable = (output: string, column: string) =>
  parseTables(output).find((t) => t.header.some((h) => h.toLowerCase().includes(column.toLowerCase())))

interface Sizes {
  tiny: boolean
  size: number
  naiveSize: number
  rounds: number
  apiDocs?: number
  apiStatsDocs?: number
  alertsClients?: string
  alertsSeconds?: number
  alertsFanouts?: string
  alertsChurn?: string
  stormCount?: number
  stormKills?: number
  soakMinutes?: number
  soakClients?: number
  soakStore?: string
}

function sectionArgs(section: Section, s: Sizes): string[] {
  const opt = (name: string, value: number | string | undefined) =>
    value === undefined ? [] : [`--${name}`, String(value)]
  switch (section) {
    case 'ingest':
      return ['bench/ingest.ts', '--count', String(s.size), '--rounds', String(s.rounds)]
    case 'references':
      return [
        'bench/ingest-references.ts',
        ...['--count', String(s.size), '--naive-count', String(s.naiveSize), '--rounds', String(s.rounds)],
      ]
    case 'api':
      return [
        'bench/api.ts',
        ...(s.tiny ? ['--tiny'] : ['--rounds', String(s.rounds)]),
        ...opt('docs', s.apiDocs),
        ...opt('stats-docs', s.apiStatsDocs),
      ]
    case 'api-ferretdb':
      return ['bench/api.ts', '--store', 'mongodb', ...(s.tiny ? ['--tiny'] : ['--rounds', String(s.rounds)])]
    case 'alerts':
      return [
        'bench/alerts.ts',
        ...(s.tiny ? ['--tiny'] : []),
        ...opt('clients', s.alertsClients),
        ...opt('seconds', s.alertsSeconds),
        ...opt('fanouts', s.alertsFanouts),
        ...opt('churn', s.alertsChurn),
      ]
    case 'webhooks':
      return ['bench/webhooks.ts', ...(s.tiny ? ['--tiny'] : [])]
    case 'rule-change':
      return ['bench/rule-change.ts', ...(s.tiny ? ['--tiny'] : [])]
    case 'replicas':
      return ['bench/replicas.ts', ...(s.tiny ? ['--tiny'] : [])]
    case 'storm':
      return [
        'bench/storm.ts',
        ...opt('count', s.stormCount ?? (s.tiny ? 5_000 : undefined)),
        ...opt('kills', s.stormKills ?? (s.tiny ? 4 : undefined)),
      ]
    case 'soak':
      return [
        'bench/soak.ts',
        ...opt('duration', s.soakMinutes ?? (s.tiny ? 0.33 : undefined)),
        ...opt('clients', s.soakClients ?? (s.tiny ? 50 : undefined)),
        ...opt('store', s.soakStore),
        ...(s.tiny ? ['--interval', '10'] : []),
      ]
  }
}

const TITLES: Record<Section, string> = {
  ingest: '1. Ingest: indexer and its batch write vs raw COPY of the same rows (a)',
  references:
    '1b. Ingest references: consume-only (b), naive per-message (c), the indexer as a process (c and the process on the store of the run)',
  api: '2. API (PostgreSQL)',
  'api-ferretdb': '2b. API on FerretDB (FerretDB-bound)',
  alerts: '3. Alerts (SSE)',
  webhooks: '3b. Webhooks: the notifier beside a naive sender',
  'rule-change': '3c. Rule change → first match',
  replicas: '3d. Alerts through HAProxy: direct vs proxy, 1 vs 2 replicas, the reconnect herd',
  storm: '4. Kill storm: two indexers, SIGKILLs at random moments',
  soak: '5. Soak: the pipeline over time',
}

interface SectionResult {
  section: Section
  command: string
  seconds: number
  code: number | null
  output: string
}

function runSection(section: Section, args: string[], env: NodeJS.ProcessEnv): Promise<SectionResult> {
  const command = `node ${TS_NODE_FLAGS.join(' ')} ${args.join(' ')}`
  process.stderr.write(`\n[bench] ${section}: ${command}\n`)
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...TS_NODE_FLAGS, ...args], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let output = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      output += chunk
    })
    child.once('error', reject)
    child.once('close', (code) => {
      const seconds = (performance.now() - started) / 1000
      process.stderr.write(`[bench] ${section}: exit ${code} after ${seconds.toFixed(0)} s\n`)
      resolve({ section, command, seconds, code, output: output.trim() })
    })
  })
}

function serviceEnv(): NodeJS.ProcessEnv {
  const { KAFKA_BROKERS, MONGO_URL, DATABASE_URL } = process.env
  if (KAFKA_BROKERS && MONGO_URL && DATABASE_URL) return process.env
  return { ...process.env, ...startServices() }
}

function header(): string {
  const git = (args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim()
    } catch {
      return '?'
    }
  }
  const dirty = git(['status', '--porcelain', '--untracked-files=no']) ? ' (with uncommitted changes)' : ''
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
  return [
    '# Intellisite benchmarks',
    '',
    `- date: ${new Date().toISOString()}`,
    `- commit: ${git(['rev-parse', '--short', 'HEAD'])}${dirty}`,
    `- machine: ${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? '?'}), ` +
      `${(totalmem() / 2 ** 30).toFixed(1)} GiB memory, load average at start ${load}`,
    `- node ${process.version}; services from scripts/services/services.sh (Kafka, FerretDB, PostgreSQL on loopback)`,
  ].join('\n')
}

function summaries(results: SectionResult[]): string {
  const out = (section: Section) => results.find((r) => r.section === section && r.code === 0)?.output ?? ''
  const lines: string[] = []
  const ingest = findTable(out('ingest'), 'raw det/s')
  const refs = findTable(out('references'), 'consume-only')
  const im = medianRow(ingest)
  const rm = medianRow(refs)
  const indexer = ingest && im ? numberIn(cell(ingest, im, 'indexer det/s')) : Number.NaN
  const raw = ingest && im ? numberIn(cell(ingest, im, 'raw det/s')) : Number.NaN
  const consume = refs && rm ? numberIn(cell(refs, rm, 'consume-only')) : Number.NaN
  const naive = refs && rm ? numberIn(cell(refs, rm, 'naive')) : Number.NaN
  const process_ = refs && rm ? numberIn(cell(refs, rm, 'indexer process det/s')) : Number.NaN
  if (ingest || refs) {
    const limit = Math.min(...[raw, consume].filter((n) => !Number.isNaN(n)))
    const ratio = (n: number, d: number) =>
      Number.isNaN(n) || !Number.isFinite(d) ? '—' : (n / d).toFixed(2)
    const show = (n: number) => (Number.isNaN(n) ? '—' : String(Math.round(n)))
    lines.push(
      '## Ingest summary',
      '',
      'Medians from the two ingest sections above. Each section measures its rows side by side on the ' +
        'same backlogs; across the two sections the rows come from different processes a few minutes ' +
        'apart. Target: indexer ≥ 0.8 × min(a, b).',
      '',
      '| what | det/s | ÷ min(a, b) |',
      '|---|---:|---:|',
      `| indexer, in-process (ingest section) | ${show(indexer)} | ${ratio(indexer, limit)} |`,
      `| indexer, own process (references section) | ${show(process_)} | ${ratio(process_, limit)} |`,
      `| (a) raw write (PostgreSQL: COPY rows + token rows), same batch size and indexes | ${show(raw)} | ${ratio(raw, limit)} |`,
      `| (b) consume-only, same client and fetch settings | ${show(consume)} | ${ratio(consume, limit)} |`,
      `| (c) naive: eachMessage + insertOne, autocommit | ${show(naive)} | ${ratio(naive, limit)} |`,
      '',
    )
  }
  const memory: string[] = []
  const indexerRss = refs && rm ? numberIn(cell(refs, rm, 'peak RSS')) : Number.NaN
  if (!Number.isNaN(indexerRss)) {
    memory.push(
      `| indexer (own process, ingesting the backlog) | VmHWM, median of rounds | ${indexerRss.toFixed(0)} |`,
    )
  }
  const apiPeak = /API process peak RSS \(VmHWM\): ([\d.]+) MiB/.exec(out('api'))
  if (apiPeak) memory.push(`| API (own process, section 2's load) | VmHWM | ${apiPeak[1]} |`)
  const alerts = findTable(out('alerts'), 'server RSS')
  for (const row of alerts?.rows ?? []) {
    if (cell(alerts!, row, 'fan-out') !== 'ours' || cell(alerts!, row, 'churn') !== 'none') continue
    memory.push(
      `| API alerts server, ${row[0]} SSE clients | RSS after the load (per client: ` +
        `${cell(alerts!, row, 'per client') ?? '?'} KiB) | ${cell(alerts!, row, 'server RSS') ?? '?'} |`,
    )
  }
  if (memory.length > 0) {
    lines.push(
      '## Resources',
      '',
      'Processes run from source through tsx (a few tens of MiB more than `node dist/main.js`).',
      '',
      '| process | measure | MiB |',
      '|---|---|---:|',
      ...memory,
      '',
    )
  }
  lines.push(
    '## Sections',
    '',
    '| section | command | seconds | exit |',
    '|---|---|---:|---:|',
    ...results.map((r) => `| ${r.section} | \`${r.command}\` | ${r.seconds.toFixed(0)} | ${r.code} |`),
    `| **total** | | ${results.reduce((sum, r) => sum + r.seconds, 0).toFixed(0)} | |`,
  )
  return lines.join('\n')
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      tiny: { type: 'boolean', default: false },
      only: { type: 'string' },
      size: { type: 'string' },
      'naive-size': { type: 'string' },
      rounds: { type: 'string' },
      'api-docs': { type: 'string' },
      'api-stats-docs': { type: 'string' },
      'alerts-clients': { type: 'string' },
      'alerts-seconds': { type: 'string' },
      'alerts-fanouts': { type: 'string' },
      'alerts-churn': { type: 'string' },
      'storm-count': { type: 'string' },
      'storm-kills': { type: 'string' },
      duration: { type: 'string' },
      'soak-clients': { type: 'string' },
      'soak-store': { type: 'string' },
      out: { type: 'string' },
    },
  })
  const tiny = args.tiny ?? false
  const num = (value: string | undefined) => (value === undefined ? undefined : Number(value))
  const sizes: Sizes = {
    tiny,
    size: num(args.size) ?? (tiny ? 2_000 : 100_000),
    naiveSize: num(args['naive-size']) ?? (tiny ? 300 : 1_500),
    rounds: num(args.rounds) ?? (tiny ? 1 : 3),
    apiDocs: num(args['api-docs']),
    apiStatsDocs: num(args['api-stats-docs']),
    alertsClients: args['alerts-clients'],
    alertsSeconds: num(args['alerts-seconds']),
    alertsFanouts: args['alerts-fanouts'],
    alertsChurn: args['alerts-churn'],
    stormCount: num(args['storm-count']),
    stormKills: num(args['storm-kills']),
    soakMinutes: num(args.duration),
    soakClients: num(args['soak-clients']),
    soakStore: args['soak-store'],
  }
  const wanted = new Set(
    (args.only ?? SECTIONS.filter((s) => !ON_REQUEST.includes(s)).join(','))
      .split(',')
      .map((s) => s.trim())
      .flatMap((s) => (s === 'ingest' ? ['ingest', 'references'] : [s])),
  )
  for (const name of wanted) {
    if (!(SECTIONS as readonly string[]).includes(name)) throw new Error(`unknown section ${name}`)
  }

  const env = serviceEnv()
  const head = header()
  const results: SectionResult[] = []
  for (const section of SECTIONS) {
    if (wanted.has(section)) results.push(await runSection(section, sectionArgs(section, sizes), env))
  }
  const body = results.map((r) =>
    [
      `## ${TITLES[r.section]}`,
      '',
      r.code === 0 ? r.output : `**FAILED** (exit ${r.code}); output:\n\n${r.output}`,
      '',
    ].join('\n'),
  )
  const report = [head, '', ...body, summaries(results), ''].join('\n')
  if (args.out) writeFileSync(args.out, report)
  process.stdout.write(`\n${report}`)
  if (results.some((r) => r.code !== 0)) process.exitCode = 1
}

if (import.meta.url === `file://${process.argv[1]}`) await main()
