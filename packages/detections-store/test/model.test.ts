import { describe, expect, it } from 'vitest'
import {
  buildAlert,
  categoryTokens,
  decodeCursor,
  detectionId,
  detectionMessageSchema,
  encodeCursor,
  toDetectionDocument,
} from '../src/index.js'
import { decodeField, encodeField } from '../src/mongo-counted-once.js'

const coords = { topic: 'intellisite.detections', partition: 0, offset: 42, timestamp: 1_700_000_000_000 }

describe('detection identity', () => {
  it('is deterministic for the same Kafka coordinates', () => {
    expect(detectionId(coords)).toBe(detectionId({ ...coords }))
    expect(detectionId(coords)).toMatch(/^[A-Za-z0-9_-]{22}$/)
  })

  it('differs when the topic was re-created (same offset, new timestamp)', () => {
    expect(detectionId({ ...coords, timestamp: coords.timestamp + 1 })).not.toBe(detectionId(coords))
    expect(detectionId({ ...coords, partition: 1 })).not.toBe(detectionId(coords))
    expect(detectionId({ ...coords, offset: 43 })).not.toBe(detectionId(coords))
    expect(detectionId({ ...coords, topic: 'other' })).not.toBe(detectionId(coords))
  })
})

describe('category tokens', () => {
  it('splits compound categories into case-folded tokens', () => {
    expect(categoryTokens(' SUV, Pickup ,')).toEqual(['suv', 'pickup'])
  })
})

describe('detection document and alert', () => {
  const message = detectionMessageSchema.parse({
    Year: 2011,
    Make: 'MAZDA',
    Model: 'CX-9',
    Category: 'Wagon, SUV',
  })
  const document = toDetectionDocument(message, coords, true)

  it('keeps the original spelling and case-folded keys', () => {
    expect(document).toMatchObject({
      _id: detectionId(coords),
      make: 'MAZDA',
      makeKey: 'mazda',
      categoryTokens: ['wagon', 'suv'],
      detectedAt: new Date(coords.timestamp),
      suspicious: true,
      source: coords,
    })
  })

  it('builds the alert contract', () => {
    expect(buildAlert(document, 'category matches SUV')).toEqual({
      id: document._id,
      detectedAt: '2023-11-14T22:13:20.000Z',
      year: 2011,
      make: 'MAZDA',
      model: 'CX-9',
      category: 'Wagon, SUV',
      reason: 'category matches SUV',
    })
  })

  it('rejects wrong types and missing fields, drops unknown keys', () => {
    expect(
      detectionMessageSchema.safeParse({ Year: '2011', Make: 'a', Model: 'b', Category: 'c' }).success,
    ).toBe(false)
    expect(detectionMessageSchema.safeParse({ Year: 2011, Make: 'a', Model: 'b' }).success).toBe(false)
    expect(
      detectionMessageSchema.safeParse({ Year: 2011.5, Make: 'a', Model: 'b', Category: 'c' }).success,
    ).toBe(false)
    const parsed = detectionMessageSchema.parse(
      JSON.parse('{"Year":2011,"Make":"a","Model":"b","Category":"c","__proto__":{"x":1}}'),
    )
    expect(Object.keys(parsed).sort()).toEqual(['Category', 'Make', 'Model', 'Year'])
    expect(({} as Record<string, unknown>).x).toBeUndefined()
  })
})

describe('cursor and field encoding', () => {
  it('round-trips a cursor and rejects forged ones', () => {
    const cursor = encodeCursor(new Date(1_700_000_000_123), 'abc_DEF-123')
    expect(decodeCursor(cursor)).toEqual({ detectedAt: new Date(1_700_000_000_123), id: 'abc_DEF-123' })
    for (const bad of ['', 'not base64!', Buffer.from('12.x y').toString('base64url'), 'a'.repeat(300)]) {
      expect(() => decodeCursor(bad)).toThrow()
    }
  })

  it('escapes field names MongoDB cannot store', () => {
    for (const key of ['mercedes-benz', 'a.b', '$x', '100%', '%2E']) {
      const field = encodeField(key)
      expect(field).not.toMatch(/[.]|^\$/)
      expect(decodeField(field)).toBe(key)
    }
  })
})
