// Faults at cluster scale: a private cluster of three brokers (replication factor 3,
// min.insync.replicas 2; with `CLUSTER_FAULTS=all` a KRaft quorum of three controller-only nodes
// beside them, otherwise the brokers are the quorum too), under a real indexer
// process and the API's alerts stream with SSE clients. SIGKILL the leader of a detections
// partition (with `CLUSTER_FAULTS=all`, then of an alerts partition, then the active controller,
// each back before the next kill; then two brokers at once: the quorum lives on, so writes are
// refused with NOT_ENOUGH_REPLICAS, nothing commits, the indexer reports the stall on /readyz, and
// all of it recovers when one broker is back). Every detection is stored once, every suspicious one
// alerts once, and every SSE client sees every alert once, in partition order.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { Partitioners } from 'kafkajs'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import {
  PARTITIONS as ALERT_PARTITIONS,
  alertsConfig,
  startServer,
  subscribe,
} from '../../packages/api/test/alerts/helpers.js'
import { kafkaErrorType } from '../../packages/common/src/kafka/errors.js'
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
import { TS_NODE_FLAGS } from '../support/node-flags.js'
import { freePort } from '../support/ports.js'
import { type PrivateKafkaCluster, startPrivateKafkaCluster } from '../support/private-kafka.js'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CHUNK = 1_500
const SSE_CLIENTS = 3
/** The test's stall timeout for the indexer (default 60 s): an outage shows on /readyz soon. */
const STALL_TIMEOUT_MS = 10_000
/**
 * The suite kills the leader of a detections partition; `CLUSTER_FAULTS=all` (`pnpm test:cluster`)
 * also kills the leader of an alerts partition, the active controller, then two brokers at once,
 * two minutes more on two cores.
 */
const ALL_FAULTS = process.env.CLUSTER_FAULTS === 'all'

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

interface LogLine {
  at: number
  level: number
  msg: string
  /** Kafka error codes (and other upper-case names) the line mentions. */
  codes: string[]
}

/**
 * The indexer as a child process, its log kept (time, message, error codes) so the test can report
 * which errors it hit and what it did between a kill and the resumption.
 */
function spawnIndexer(env: Record<string, string>): {
  child: ChildProcess
  errors: Map<string, number>
  log: LogLine[]
} {
  const child = spawn(process.execPath, [...TS_NODE_FLAGS, 'packages/indexer/src/main.ts'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const errors = new Map<string, number>()
  const log: LogLine[] = []
  let rest = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n')
    rest = lines.pop() ?? ''
    for (const line of lines) {
      const codes = [...new Set(line.match(/\b[A-Z][A-Z_]{6,}\b/g) ?? [])]
      for (const type of line.match(/\b[A-Z][A-Z_]{6,}\b/g) ?? [])
        errors.set(type, (errors.get(type) ?? 0) + 1)
      try {
        const entry = JSON.parse(line) as { time?: number; level?: number; msg?: string }
        log.push({ at: entry.time ?? Date.now(), level: entry.level ?? 0, msg: entry.msg ?? '', codes })
      } catch {}
    }
  })
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return { child, errors, log }
}

/** The indexer's log from `from` to `to` (epoch ms): each message once, when it first came and how often. */
function logSummary(log: readonly LogLine[], from: number, to: number) {
  const seen = new Map<string, { first: number; count: number; codes: Set<string> }>()
  for (const line of log) {
    if (line.at < from || line.at > to || line.level < 30) continue
    const entry = seen.get(line.msg) ?? { first: line.at - from, count: 0, codes: new Set<string>() }
    entry.count++
    for (const code of line.codes) entry.codes.add(code)
    seen.set(line.msg, entry)
  }
  return [...seen].map(
    ([msg, e]) => `+${(e.first / 1000).toFixed(1)}s ${msg} x${e.count} ${[...e.codes].join(',')}`,
  )
}

/**
 * The Kafka error code an acks=all write to `topic` gets right now (undefined: it was accepted).
 * One attempt, no kafkajs retries: what a producer sees before it retries.
 */
async function probeWrite(pipeline: Pipeline, topic: string): Promise<string | undefined> {
  const producer = pipeline.kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: 0 },
  })
  try {
    await producer.connect()
    await producer.send({
      topic,
      acks: -1,
      timeout: 5_000,
      messages: [0, 1, 2].map((partition) => ({ partition, value: 'probe' })),
    })
    return undefined
  } catch (err) {
    return kafkaErrorType(err) ?? (err as Error).name
  } finally {
    await producer.disconnect().catch(() => {})
  }
}

describe('three brokers, replication factor 3', () => {
  let cluster: PrivateKafkaCluster | undefined
  beforeAll(async () => {
    // Every fault needs the quorum on nodes of its own, to kill the active controller apart from
    // the brokers; one leader's loss is as real on three combined nodes, half the JVMs to start.
    cluster = await startPrivateKafkaCluster(3, { controllers: ALL_FAULTS ? 3 : 0 })
  }, 180_000)
  afterAll(() => cluster?.destroy())

  it('loses no detection and no alert, and duplicates none, through leader, controller and two-broker losses', async () => {
    if (!cluster) throw new Error('no private cluster')
    const nodes = cluster
    const pipeline = await createPipeline({ brokers: nodes.brokers })
    await createTopics(pipeline)
    // Where the test's own acks=all writes go: the detections topic must hold only detections.
    const probeTopic = `test-probe-${randomUUID()}`
    {
      const admin = pipeline.kafka.admin()
      await admin.connect()
      // Not waitForLeaders: kafkajs asks one broker once, which may not know the topic yet.
      await admin.createTopics({ waitForLeaders: false, topics: [{ topic: probeTopic, numPartitions: 3 }] })
      await admin.disconnect()
    }
    // Topics created without a replication factor take the cluster's default.
    for (const t of await topicMetadata(pipeline, [...Object.values(pipeline.topics), probeTopic])) {
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
        LOG_LEVEL: 'info',
        TOPIC_REPLICATION_FACTOR: '3',
        // Small batches: many transactions, so every kill lands mid-stream.
        INDEXER_MAX_BYTES_PER_PARTITION: '3072',
        INDEXER_STALL_TIMEOUT_MS: String(STALL_TIMEOUT_MS),
        INDEXER_HOST: '127.0.0.1',
        INDEXER_PORT: String(port),
      }),
    )
    let lastNotReady: unknown
    const readyz = async () => {
      const { status, body } = await fetch(`http://127.0.0.1:${port}/readyz`, {
        signal: AbortSignal.timeout(2_000),
      }).then(
        async (r) => ({ status: r.status, body: (await r.json()) as unknown }),
        () => ({ status: 0, body: undefined }),
      )
      if (status === 503) lastNotReady = body
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
    const seen = () => Math.min(...clients.map((c) => c.alerts.length))
    const alive = () => {
      if (indexer.child.exitCode !== null || indexer.child.signalCode !== null) {
        throw new Error(`the indexer exited (${indexer.child.exitCode ?? indexer.child.signalCode})`)
      }
    }
    const pauses: Record<string, unknown>[] = []
    // On failure too: the timeline says where the pipeline stalled.
    onTestFinished(({ task }) => {
      if (task.result?.state === 'fail') {
        console.info('cluster faults (failed)', {
          events,
          pauses,
          indexerReadiness,
          apiReadiness,
          indexerErrors: Object.fromEntries(indexer.errors),
          indexerLog: logSummary(indexer.log, started, Date.now()),
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

    // One node at a time: the pipeline carries on, and the node is back, with every replica in
    // sync, before the next kill. The pause is timed from the kill to the first alert that reaches
    // every client (a committed transaction) and to 300 more detections stored.
    const killOne = async (what: string, victim: number) => {
      await produceChunk()
      await progress(200, `progress before killing ${what}`)
      const before = seen()
      note(`kill ${what} (node ${victim}) at ${new Date().toISOString()}`)
      const killedAt = Date.now()
      await nodes.kill(victim)
      const firstAlert = (async () => {
        await waitFor(() => seen() > before, {
          timeoutMs: 90_000,
          intervalMs: 50,
          what: 'an alert after the kill',
        })
        return Date.now() - killedAt
      })()
      await progress(300, `progress with ${what} dead`, 90_000)
      const resumedAt = Date.now()
      note(`pipeline moved on without node ${victim}`)
      pauses.push({
        what,
        firstAlertAfterMs: await firstAlert,
        stored300AfterMs: resumedAt - killedAt,
        indexerLog: logSummary(indexer.log, killedAt, resumedAt),
      })
      await nodes.start([victim])
      note(`node ${victim} back`)
      await waitFor(() => fullyReplicated(pipeline), { timeoutMs: 60_000, intervalMs: 500, what: 'full ISR' })
      note('all replicas in sync')
    }
    await killOne('the leader of detections/0', await leaderOf(pipeline, pipeline.topics.detections, 0))
    if (ALL_FAULTS) {
      await killOne('the leader of alerts/1', await leaderOf(pipeline, pipeline.topics.alerts, 1))
      const controller = nodes.activeController()
      if (controller === undefined) throw new Error('no active controller found')
      expect(nodes.controllers.map((c) => c.id)).toContain(controller)
      await killOne('the active controller', controller)
    }

    // Two brokers down: the quorum stands, the third broker leads everything, alone in sync.
    let outageLog: ReturnType<typeof logSummary> | undefined
    let recoveryLog: ReturnType<typeof logSummary> | undefined
    const killTwo = async () => {
      await produceChunk()
      await produceChunk()
      await progress(200, 'progress before the double kill')
      const [first, second] = nodes.nodes.map((n) => n.id)
      if (first === undefined || second === undefined) throw new Error('not enough nodes')
      note(`kill brokers ${first} and ${second} at ${new Date().toISOString()}`)
      const doubleKillAt = Date.now()
      await Promise.all([nodes.kill(first), nodes.kill(second)])
      // Once the controller has fenced them (9 s), an acks=all write is refused outright.
      const refusals = new Map<string, number>()
      await waitFor(
        async () => {
          const code = (await probeWrite(pipeline, probeTopic)) ?? 'accepted'
          refusals.set(code, (refusals.get(code) ?? 0) + 1)
          return code === 'NOT_ENOUGH_REPLICAS'
        },
        { timeoutMs: 60_000, intervalMs: 500, what: () => `NOT_ENOUGH_REPLICAS (${[...refusals.keys()]})` },
      )
      note(
        `acks=all refused with NOT_ENOUGH_REPLICAS (probes: ${JSON.stringify(Object.fromEntries(refusals))})`,
      )
      // What was committed before the kill may still be on its way to the clients.
      await new Promise((resolve) => setTimeout(resolve, 3_000))
      const frozen = {
        stored: await stored(),
        seen: clients.map((c) => c.alerts.length),
        committed: await committedCount(pipeline),
      }
      // The indexer says so: not ready, with the stalled partitions and the error that stops them.
      await waitFor(async () => (await readyz()) === 503, {
        timeoutMs: STALL_TIMEOUT_MS + 30_000,
        intervalMs: 200,
        what: 'indexer /readyz 503 during the outage',
      })
      const outageReadiness = lastNotReady as {
        checks: { kafka: string; partitions: string }
        stalled?: { partition: number; reason: string; error?: string; code?: string; hint: string }[]
      }
      note(`indexer /readyz 503: ${JSON.stringify(outageReadiness)}`)
      expect(outageReadiness.checks.partitions).toBe('down')
      expect(outageReadiness.stalled?.length).toBeGreaterThan(0)
      // Once the Kafka client gives up on a transaction (its retries, about 25 s), the stall names
      // the error that stopped it and what to do.
      await waitFor(
        async () =>
          (await readyz()) === 503 &&
          (lastNotReady as typeof outageReadiness).stalled?.some((p) => p.error !== undefined) === true,
        { timeoutMs: 60_000, intervalMs: 500, what: 'a stalled partition naming its error' },
      )
      const namedStall = lastNotReady as typeof outageReadiness
      note(`indexer /readyz names the error: ${JSON.stringify(namedStall.stalled)}`)
      await new Promise((resolve) => setTimeout(resolve, 12_000))
      alive()
      expect(await probeWrite(pipeline, probeTopic)).toBe('NOT_ENOUGH_REPLICAS')
      const during = {
        stored: await stored(),
        seen: clients.map((c) => c.alerts.length),
        committed: await committedCount(pipeline),
      }
      note(`two down: ${JSON.stringify({ frozen, during })}`)
      // Nothing new became visible to a read_committed reader, and no offset was committed.
      expect(during.seen).toEqual(frozen.seen)
      expect(during.committed).toBe(frozen.committed)
      // The store may receive the batches in flight once (their transactions then fail and they are
      // redelivered into the idempotent store), never the stream.
      expect(during.stored - frozen.stored).toBeLessThan(CHUNK / 4)
      expect(during.stored).toBeLessThan(fixtures.length)
      outageLog = logSummary(indexer.log, doubleKillAt, Date.now())
      // kafkajs logs the broker's message, not the code, for the indexer's own refused writes.
      const refusedWrites = indexer.log.filter(
        (line) => line.at >= doubleKillAt && line.msg.includes('fewer in-sync replicas than required'),
      ).length
      note(`indexer writes refused for fewer in-sync replicas (NOT_ENOUGH_REPLICAS): ${refusedWrites}`)

      await nodes.start([first])
      const oneBackAt = Date.now()
      note(`broker ${first} back: two in sync again`)
      await progress(300, 'progress with one broker back', 90_000)
      await waitFor(() => clients.every((c, i) => c.alerts.length > (during.seen[i] ?? 0)), {
        timeoutMs: 30_000,
        what: 'alerts flowing again',
      })
      note('pipeline resumed')
      await waitFor(async () => (await readyz()) === 200, {
        timeoutMs: 60_000,
        intervalMs: 200,
        what: 'indexer /readyz 200 again',
      })
      note('indexer ready again')
      recoveryLog = logSummary(indexer.log, oneBackAt, Date.now())
      await nodes.start([second])
      note(`broker ${second} back`)
    }
    if (ALL_FAULTS) await killTwo()

    await waitFor(
      async () => {
        alive()
        return (await committedCount(pipeline)) === fixtures.length
      },
      { timeoutMs: 180_000, intervalMs: 500, what: 'every offset committed' },
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
    console.info(
      JSON.stringify(
        {
          detections: fixtures.length,
          alerts: reference.length,
          events,
          pauses,
          outageLog,
          recoveryLog,
          indexerReadiness,
          apiReadiness,
          indexerErrors: Object.fromEntries(indexer.errors),
        },
        null,
        1,
      ),
    )
  }, 600_000)
})
