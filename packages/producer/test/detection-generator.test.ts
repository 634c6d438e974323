import { detectionMessageSchema } from '@intellisite/detections-store'
import { describe, expect, it } from 'vitest'
import { CATALOGUE, SUV_SHARE } from '../src/catalogue.js'
import { createDetectionGenerator, encodeDetection } from '../src/detection-generator.js'

const sample = (seed: string, n: number) => {
  const generate = createDetectionGenerator({ seed })
  return Array.from({ length: n }, generate)
}

describe('detection generator', () => {
  it('replays the same stream for the same seed and a different one for another seed', () => {
    expect(sample('bench-1', 500)).toEqual(sample('bench-1', 500))
    expect(sample('bench-2', 500)).not.toEqual(sample('bench-1', 500))
  })

  it('sends exactly SUV at the real stream share (about 22%)', () => {
    const detections = sample('share', 20_000)
    const share = detections.filter((d) => d.Category === 'SUV').length / detections.length
    // 20k draws: the standard deviation is 0.3 points, so ±2 points cannot fail by chance.
    expect(share).toBeGreaterThan(SUV_SHARE - 0.02)
    expect(share).toBeLessThan(SUV_SHARE + 0.02)
  })

  it('includes the real stream quirks: compound categories and oddly cased makes', () => {
    const detections = sample('quirks', 20_000)
    const categories = new Set(detections.map((d) => d.Category))
    const makes = new Set(detections.map((d) => d.Make))
    for (const category of ['SUV, Pickup', 'Wagon, SUV', 'Sedan, Wagon', 'Van/Minivan']) {
      expect(categories).toContain(category)
    }
    for (const make of ['MAZDA', 'smart', 'Mercedes-Benz', 'INFINITI']) expect(makes).toContain(make)
    expect(makes.size).toBeGreaterThanOrEqual(50)
    expect(new Set(CATALOGUE.map((e) => e.make)).size).toBe(makes.size)
  })

  it('draws years inside each model production span, and every message is a valid detection', () => {
    const spans = new Map(CATALOGUE.map((e) => [`${e.make}|${e.model}`, e]))
    for (const detection of sample('years', 5_000)) {
      const entry = spans.get(`${detection.Make}|${detection.Model}`)!
      expect(detection.Year).toBeGreaterThanOrEqual(entry.fromYear)
      expect(detection.Year).toBeLessThanOrEqual(entry.toYear)
      expect(detectionMessageSchema.parse(detection)).toEqual(detection)
    }
  })
})

describe('encodeDetection', () => {
  it("produces the challenge producer's JSON (Python json.dumps layout, key order kept)", () => {
    const bytes = encodeDetection({
      Year: 2011,
      Make: 'Toyota',
      Model: 'Land Cruiser',
      Category: 'SUV, Pickup',
    })
    expect(bytes.toString('utf8')).toBe(
      '{"Year": 2011, "Make": "Toyota", "Model": "Land Cruiser", "Category": "SUV, Pickup"}',
    )
  })

  it('escapes what JSON requires', () => {
    const message = { Year: 2020, Make: 'A "quoted" make', Model: 'back\\slash', Category: 'Sedan' }
    expect(JSON.parse(encodeDetection(message).toString('utf8'))).toEqual(message)
  })
})
