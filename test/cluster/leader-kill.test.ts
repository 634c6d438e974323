// Faults at cluster scale: a private three-node KRaft cluster (replication factor 3,
// min.insync.replicas 2) under a real indexer process and the API's alerts stream with SSE
// clients. SIGKILL the leader of a detections partition, then of an alerts partition, then the
// active controller, each back before the next kill; then two nodes at once, which must stop
// writes without losing or committing anything. Every detection is stored once, every suspicious
// one alerts once, and every SSE client sees every alert once, in partition order.
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import {
  PARTITIONS as ALERT_PARTITIONS,
  alertsConfig,
  startServer,
  subscribe,
} from '../../packages/api/test/alerts/helpers.js'
import {
  committedCount,
  createPipeline,
  createTopics,
  detections,
  exited,
  expectExactlyOnce,
  indexerEnv,
  type Pipeline,
  type Produced,
  produce,
  readTopic,
  waitFor,
} from '../../packages/indexer/test/helpers.js'
import { freePort } from '../support/ports.js'
import { type PrivateKafkaCluster, startPrivateKafkaCluster } from '../support/private-kafka.js'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CHUNK = 1_500
const SSE_CLIENTS = 3

/** Every partition of the test's topics and of the internal ones has all three replicas in sync. */
async function fullyReplicated(pipeline: Pipeline): Promise<boolean> {
  const admin = pipeline.kafka.admin()
  await admin.connect()
  try {
    const topics = [...Object.values(pipeline.topics), '__consumer_offsets', '__transaction_state']
    const { topics: metadata } = await admin.fetchTopicMetadata({ topics })
    return metadata.every((t) => t.partitions.every((p) => p.isr.length === 3 && p.leader >= 0))
  } catch {
    return false
  } finally {
    await admin.disconnect().catch(() => {})
  }
}

/**
 * Topic metadata, retried: a broker that has not caught up with the controller yet answers
 * UNKNOWN_TOPIC_OR_PARTITION for a topic created seconds ago (kafkajs asks a random broker).
 */
async function topicMetadata(pipeline: Pipeline, topics: string[]) {
  const admin = pipeline.kafka.admin()
  await admin.connect()
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await admin.fetchTopicMetadata({ topics })).topics
      } catch (err) {
        if (attempt >= 20) throw err
        await new Promise((resolve) => setTimeout(resolve, 500))
      }
    }
  } finally {
    await admin.disconnect()
  }
}

async function leaderOf(pipeline: Pipeline, topic: string, partition: number): Promise<number> {
  const topics = await topicMetadata(pipeline, [topic])
  const leader = topics[0]?.partitions.find((p) => p.partitionId === partition)?.leader
  if (leader === undefined || leader < 0) throw new Error(`${topic}/${partition} has no leader`)
  return leader
}

/** The indexer as a child process, its warnings kept so the test can report which errors it hit. */
function spawnIndexer(env: Record<string, string>): { child: ChildProcess; errors: Map<string, number> } {
  const child = spawn(
    process.execPath,
    ['--conditions=development', '--import', 'tsx', 'packages/indexer/src/main.ts'],
    { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const errors = new Map<string, number>()
  let rest = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n')
    rest = lines.pop() ?? ''
    for (const line of lines) {
      for (const type of line.match(/\b[A-Z][A-Z_]{6,}\b/g) ?? [])
        errors.set(type, (errors.get(type) ?? 0) + 1)
    }
  })
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return { child, errors }
}

describe('a three-node cluster', () => {
  let cluster: PrivateKafkaCluster | undefined
  beforeAll(async () => {
    cluster = await startPrivateKafkaCluster(3)
  }, 120_000)
  afterAll(() => cluster?.destroy())

  it('loses no detection and no alert, and duplicates none, through leader and controller kills', async () => {
    if (!cluster) throw new Error('no private cluster')
    const nodes = cluster
    const pipeline = await createPipeline({ brokers: nodes.brokers })
    await createTopics(pipeline)
    // Topics created without a replication factor take the cluster's default.
    for (const t of await topicMetadata(pipeline, Object.values(pipeline.topics))) {
      for (const p of t.partitions) expect(p.replicas).toHaveLength(3)
    }
    const started = Date.now()
    const since = () => Date.now() - started
    const events: { at: number; what: string }[] = []
    const note = (what: string) => events.push({ at: since(), what })

    // The API side: the real alerts feature (one read_committed consumer) and a few SSE clients.
    const server = await startServer(alertsConfig(pipeline.topics.alerts), { brokers: nodes.brokers })
    const clients = Array.from({ length: SSE_CLIENTS }, () =>
      subscribe(`${server.url}/alerts`, server.token()),
    )
    await waitFor(() => clients.every((c) => c.source.readyState === 1), { what: 'SSE clients connected' })
    const apiReadiness: { at: number; ready: boolean }[] = []
    const indexerReadiness: { at: number; status: number }[] = []

    const fixtures = detections(CHUNK)
    const produced: Produced[] = await produce(
      pipeline.kafka,
      pipeline.topics.detections,
      fixtures.map((d) => JSON.stringify(d)),
      { perSend: 30 },
    )
    const produceChunk = async () => {
      const more = detections(CHUNK, fixtures.length)
      const records = await produce(
        pipeline.kafka,
        pipeline.topics.detections,
        more.map((d) => JSON.stringify(d)),
        { perSend: 30 },
      )
      fixtures.push(...more)
      produced.push(...records)
    }

    const port = await freePort()
    const indexer = spawnIndexer(
      indexerEnv(pipeline, {
        LOG_LEVEL: 'warn',
        TOPIC_REPLICATION_FACTOR: '3',
        // Small batches: many transactions, so every kill lands mid-stream.
        INDEXER_MAX_BYTES_PER_PARTITION: '3072',
        INDEXER_HOST: '127.0.0.1',
        INDEXER_PORT: String(port),
      }),
    )
    const readyz = async () => {
      const status = await fetch(`http://127.0.0.1:${port}/readyz`, {
        signal: AbortSignal.timeout(2_000),
      }).then(
        (r) => r.status,
        () => 0,
      )
      if (indexerReadiness.at(-1)?.status !== status) indexerReadiness.push({ at: since(), status })
      return status
    }
    const sampler = setInterval(() => {
      void readyz()
      const ready = server.feature.ready()
      if (apiReadiness.at(-1)?.ready !== ready) apiReadiness.push({ at: since(), ready })
    }, 200)
    onTestFinished(() => clearInterval(sampler))
    await waitFor(async () => (await readyz()) === 200, { timeoutMs: 60_000, what: 'indexer ready' })

    const stored = () => pipeline.store.storedCount()
    const alive = () => {
      if (indexer.child.exitCode !== null || indexer.child.signalCode !== null) {
        throw new Error(`the indexer exited (${indexer.child.exitCode ?? indexer.child.signalCode})`)
      }
    }
    // On failure too: the timeline says where the pipeline stalled.
    onTestFinished(({ task }) => {
      if (task.result?.state === 'fail') {
        console.info('cluster leader kills (failed)', {
          events,
          indexerReadiness,
          apiReadiness,
          indexerErrors: Object.fromEntries(indexer.errors),
        })
      }
    })
    const progress = async (atLeast: number, what: string, timeoutMs = 60_000) => {
      const from = await stored()
      await waitFor(
        async () => {
          alive()
          return (await stored()) >= Math.min(from + atLeast, fixtures.length)
        },
        { timeoutMs, intervalMs: 100, what },
      )
    }

    // One node at a time: the pipeline carries on (after the controller fences the dead node, about
    // 9 s), and the node is back, with every replica in sync, before the next kill.
    const killOne = async (what: string, victim: number) => {
      await produceChunk()
      await progress(200, `progress before killing ${what}`)
      note(`kill ${what} (node ${victim})`)
      await nodes.kill(victim)
      await progress(300, `progress with ${what} dead`)
      note(`pipeline moved on without node ${victim}`)
      await nodes.start([victim])
      note(`node ${victim} back`)
      await waitFor(() => fullyReplicated(pipeline), { timeoutMs: 60_000, intervalMs: 500, what: 'full ISR' })
      note('all replicas in sync')
    }
    await killOne('the leader of detections/0', await leaderOf(pipeline, pipeline.topics.detections, 0))
    await killOne('the leader of alerts/1', await leaderOf(pipeline, pipeline.topics.alerts, 1))
    const controller = nodes.activeController()
    if (controller === undefined) throw new Error('no active controller found')
    await killOne('the active controller', controller)

    // Two nodes down: no controller quorum, no in-sync pair. Writes must stop, not half-happen.
    await produceChunk()
    await progress(200, 'progress before the double kill')
    const [first, second] = nodes.nodes.map((n) => n.id).filter((id) => id !== nodes.activeController())
    if (first === undefined || second === undefined) throw new Error('not enough nodes')
    note(`kill nodes ${first} and ${second}`)
    await Promise.all([nodes.kill(first), nodes.kill(second)])
    // What was committed before the kill may still be on its way to the clients.
    await new Promise((resolve) => setTimeout(resolve, 3_000))
    const frozen = { stored: await stored(), seen: clients.map((c) => c.alerts.length) }
    await new Promise((resolve) => setTimeout(resolve, 12_000))
    alive()
    const during = { stored: await stored(), seen: clients.map((c) => c.alerts.length) }
    note(`two down: stored ${frozen.stored} -> ${during.stored}, SSE ${frozen.seen} -> ${during.seen}`)
    // Nothing new became visible to a read_committed reader: no transaction committed.
    expect(during.seen).toEqual(frozen.seen)
    // The store may receive the batches in flight once (their transactions then fail and they are
    // redelivered into the idempotent store), never the stream.
    expect(during.stored - frozen.stored).toBeLessThan(CHUNK / 4)
    expect(during.stored).toBeLessThan(fixtures.length)

    await nodes.start([first])
    note(`node ${first} back: quorum and min ISR again`)
    await progress(300, 'progress with one node back')
    await waitFor(() => clients.every((c, i) => c.alerts.length > (during.seen[i] ?? 0)), {
      timeoutMs: 30_000,
      what: 'alerts flowing again',
    })
    note('pipeline resumed')
    await nodes.start([second])
    note(`node ${second} back`)

    await waitFor(
      async () => {
        alive()
        return (await committedCount(pipeline)) === fixtures.length
      },
      { timeoutMs: 120_000, intervalMs: 500, what: 'every offset committed' },
    )
    note('every offset committed')
    await waitFor(async () => (await readyz()) === 200 && server.feature.ready(), {
      timeoutMs: 30_000,
      what: 'indexer and API ready again',
    })

    indexer.child.kill('SIGTERM')
    expect((await exited(indexer.child)).code).toBe(0)
    await expectExactlyOnce(pipeline, fixtures, produced)

    // Every SSE client: each alert once, no gap, in partition order (the alerts topic as a
    // read_committed reader sees it is the reference).
    const reference = await readTopic(
      pipeline.kafka,
      pipeline.topics.alerts,
      fixtures.filter((d) =>
        d.Category.toLowerCase()
          .split(',')
          .some((t) => t.trim() === 'suv'),
      ).length,
    )
    const where = new Map(reference.map((r) => [r.key ?? '', r]))
    await waitFor(() => clients.every((c) => c.alerts.length >= reference.length), {
      timeoutMs: 30_000,
      what: () => `every client has ${reference.length} alerts (${clients.map((c) => c.alerts.length)})`,
    })
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    for (const client of clients) {
      expect(client.alerts).toHaveLength(reference.length)
      for (let p = 0; p < ALERT_PARTITIONS; p++) {
        const offsets = client.alerts
          .map((a) => where.get(a.id))
          .filter((r) => r?.partition === p)
          .map((r) => Number(r?.offset))
        const expected = reference.filter((r) => r.partition === p).map((r) => Number(r.offset))
        expected.sort((a, b) => a - b)
        expect(offsets).toEqual(expected)
      }
    }
    expect(apiReadiness.at(-1)?.ready).toBe(true)
    console.info('cluster leader kills', {
      detections: fixtures.length,
      alerts: reference.length,
      events,
      indexerReadiness,
      apiReadiness,
      indexerErrors: Object.fromEntries(indexer.errors),
    })
  }, 420_000)
})
