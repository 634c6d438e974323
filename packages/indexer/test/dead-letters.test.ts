import { describe, expect, it } from 'vitest'
import type { DecodeErrorCode } from '../src/decode-detection.js'
import { createPipeline, detections, produce, readTopic, startIndexer, waitFor } from './helpers.js'

const valid = (i: number) => JSON.stringify(detections(1, i)[0])

describe('dead letters', () => {
  it('sends every malformed record to the DLQ, untouched, and stores its valid neighbours', async () => {
    const pipeline = await createPipeline()
    const { registry } = await startIndexer(pipeline)
    const bad: [DecodeErrorCode, string | Buffer | null][] = [
      ['INVALID_JSON', 'not json at all'],
      ['INVALID_JSON', '{"Year": 2011,'],
      ['NOT_AN_OBJECT', '[{"Year": 2011, "Make": "Toyota", "Model": "Corolla", "Category": "SUV"}]'],
      ['NOT_AN_OBJECT', '2011'],
      ['INVALID_FIELDS', '{"Year": "2011", "Make": "Toyota", "Model": "Corolla", "Category": "SUV"}'],
      ['INVALID_FIELDS', '{"Year": 2011, "Make": "Toyota", "Model": "Corolla"}'],
      [
        'INVALID_FIELDS',
        '{"__proto__": {"admin": true}, "Year": 2011, "Make": "T", "Model": "C", "Category": "SUV"}',
      ],
      ['INVALID_UTF8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d])],
      ['EMPTY', null],
      ['EMPTY', ''],
      [
        'TOO_LARGE',
        JSON.stringify({ Year: 2011, Make: 'Toyota', Model: 'x'.repeat(1_000_000), Category: 'SUV' }),
      ],
    ]
    // Each bad record sits between two valid ones, on every partition.
    const values: (string | Buffer | null)[] = []
    const expectedCodes: (DecodeErrorCode | null)[] = []
    bad.forEach(([code, value], i) => {
      values.push(valid(2 * i), value, valid(2 * i + 1))
      expectedCodes.push(null, code, null)
    })
    const produced = await produce(pipeline.kafka, pipeline.topics.detections, values, {
      perSend: 1,
      headers: { 'x-trace-id': 'trace-1' },
    })
    const validCount = expectedCodes.filter((code) => code === null).length

    const dead = await readTopic(pipeline.kafka, pipeline.topics.dlq, bad.length)
    expect(dead).toHaveLength(bad.length)
    await waitFor(async () => (await pipeline.store.storedCount()) === validCount, {
      what: 'valid neighbours stored',
    })

    for (const [i, record] of produced.entries()) {
      const code = expectedCodes[i]
      const letter = dead.find(
        (d) =>
          d.headers['x-source-partition'] === String(record.partition) &&
          d.headers['x-source-offset'] === String(record.offset),
      )
      if (code === null) {
        expect(letter).toBeUndefined()
        continue
      }
      expect(letter, `dead letter for ${code}`).toBeDefined()
      expect(letter!.headers).toMatchObject({
        'x-error-code': code,
        'x-source-topic': pipeline.topics.detections,
        'x-source-timestamp': String(record.timestamp),
        'x-trace-id': 'trace-1',
      })
      expect(letter!.headers['x-error-message']?.length).toBeGreaterThan(0)
      expect(new Date(letter!.headers['x-failed-at'] ?? '').getTime()).toBeGreaterThan(record.timestamp - 1)
      // The original bytes, untouched (an empty value stays empty).
      expect(letter!.value ?? Buffer.alloc(0)).toEqual(record.value ?? Buffer.alloc(0))
    }

    const text = await registry.metrics()
    expect(text).toContain('indexer_dead_lettered_total{code="INVALID_JSON"} 2')
    expect(text).toContain('indexer_dead_lettered_total{code="TOO_LARGE"} 1')
    expect(text).toContain(`indexer_stored_total ${validCount}`)
  })
})
