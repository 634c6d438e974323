import { CATALOGUE, type CatalogueEntry, SUV_SHARE } from './catalogue.js'
import { createRandom, type Random, randomInt } from './random.js'

/** The challenge producer's message, field names and order included. */
export interface DetectionMessage {
  Year: number
  Make: string
  Model: string
  Category: string
}

export interface DetectionGeneratorOptions {
  seed: string
  catalogue?: readonly CatalogueEntry[]
  /** Probability that a detection's category is exactly `SUV`. */
  suvShare?: number
}

export type DetectionGenerator = () => DetectionMessage

export function createDetectionGenerator(options: DetectionGeneratorOptions): DetectionGenerator {
  const catalogue = options.catalogue ?? CATALOGUE
  const suvShare = options.suvShare ?? SUV_SHARE
  const suvs = catalogue.filter((entry) => entry.category === 'SUV')
  const others = catalogue.filter((entry) => entry.category !== 'SUV')
  if (suvs.length === 0 || others.length === 0) {
    throw new Error('the catalogue needs both exactly-SUV entries and other entries')
  }
  const random = createRandom(options.seed)
  return () => {
    const pool = random() < suvShare ? suvs : others
    const entry = pick(random, pool)
    return {
      Year: randomInt(random, entry.fromYear, entry.toYear),
      Make: entry.make,
      Model: entry.model,
      Category: entry.category,
    }
  }
}

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!
}

/**
 * The bytes the challenge's producer sends: Python's `json.dumps` of the dict, so the keys come in
 * `Year, Make, Model, Category` order with `", "` and `": "` separators, UTF-8 encoded.
 */
export function encodeDetection(message: DetectionMessage): Buffer {
  const fields = [
    `"Year": ${JSON.stringify(message.Year)}`,
    `"Make": ${JSON.stringify(message.Make)}`,
    `"Model": ${JSON.stringify(message.Model)}`,
    `"Category": ${JSON.stringify(message.Category)}`,
  ]
  return Buffer.from(`{${fields.join(', ')}}`, 'utf8')
}
