import { detectionId } from '@intellisite/detections-store'
import { describe, expect, it } from 'vitest'
import {
  committedCount,
  createPipeline,
  detections,
  isSuspicious,
  PARTITIONS,
  parseAlerts,
  produce,
  readTopic,
  startIndexer,
  waitFor,
} from './helpers.js'

describe('topic re-creation', () => {
  it('a running indexer stores the detections of a deleted and re-created topic (offsets restart at 0)', async () => {
    const pipeline = await createPipeline()
    const stored = () => pipeline.store.storedCount()
    const before = detections(60)
    await startIndexer(pipeline)
    // Two rounds, so every partition has seen at least two commits before the topic goes away.
    const old = await produce(
      pipeline.kafka,
      pipeline.topics.detections,
      before.slice(0, 30).map((d) => JSON.stringify(d)),
    )
    await waitFor(async () => (await committedCount(pipeline)) === 30, { what: 'first round committed' })
    old.push(
      ...(await produce(
        pipeline.kafka,
        pipeline.topics.detections,
        before.slice(30).map((d) => JSON.stringify(d)),
      )),
    )
    await waitFor(async () => (await committedCount(pipeline)) === old.length, {
      what: 'second round committed',
    })

    const admin = pipeline.kafka.admin()
    await admin.connect()
    try {
      await admin.deleteTopics({ topics: [pipeline.topics.detections] })
      await waitFor(async () => !(await admin.listTopics()).includes(pipeline.topics.detections), {
        what: 'topic deleted',
      })
      await waitFor(
        () =>
          admin
            .createTopics({
              topics: [{ topic: pipeline.topics.detections, numPartitions: PARTITIONS }],
              waitForLeaders: true,
            })
            .then(() => true)
            .catch(() => false),
        { what: 'topic re-created', intervalMs: 200 },
      )
    } finally {
      await admin.disconnect()
    }

    // More records than before, so stale committed offsets would skip some of them.
    const after = detections(150, 1000)
    const fresh = await produce(
      pipeline.kafka,
      pipeline.topics.detections,
      after.map((d) => JSON.stringify(d)),
    )
    expect(fresh[0]?.offset).toBe(0)
    // The same indexer, still running, must notice that its fetch positions are stale.
    await waitFor(async () => (await stored()) === old.length + fresh.length, {
      what: 'detections of both topic generations stored',
    })

    const ids = (records: typeof old) =>
      records.map((r) => detectionId({ topic: pipeline.topics.detections, ...r }))
    const all = new Set([...ids(old), ...ids(fresh)])
    expect(all.size).toBe(old.length + fresh.length)
    expect(new Set(await pipeline.store.storedIds())).toEqual(all)
    expect((await pipeline.repository.stats('make')).total).toBe(old.length + fresh.length)

    const suspicious = [...before, ...after].filter((d) => isSuspicious(d.Category)).length
    const alerts = parseAlerts(await readTopic(pipeline.kafka, pipeline.topics.alerts, suspicious))
    expect(alerts).toHaveLength(suspicious)
  })
})
