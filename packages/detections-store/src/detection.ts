import { createHash } from 'node:crypto'
import { z } from 'zod'

/**
 * A detection exactly as the cameras (and the challenge's producer) publish it:
 * `{"Year": 2011, "Make": "Toyota", "Model": "Land Cruiser", "Category": "SUV"}`.
 * Unknown keys are dropped rather than rejected so a producer may add fields without breaking us.
 */
export const detectionMessageSchema = z.object({
  Year: z.number().int().min(1886).max(2200),
  Make: z.string().trim().min(1).max(100),
  Model: z.string().trim().min(1).max(100),
  Category: z.string().trim().min(1).max(200),
})
export type DetectionMessage = z.infer<typeof detectionMessageSchema>

/** Where a record sits in Kafka: the only identity a detection has. */
export interface KafkaCoordinates {
  topic: string
  partition: number
  /** Kafka offsets are int64; below 2^53 they are exact as numbers, which is years of traffic. */
  offset: number
  /** Record timestamp in epoch milliseconds. */
  timestamp: number
}

export interface DetectionDocument {
  _id: string
  year: number
  make: string
  model: string
  category: string
  /** Case-folded copies for case-insensitive filters and grouping (`MAZDA` = `Mazda`). */
  makeKey: string
  modelKey: string
  categoryKey: string
  /** `"SUV, Pickup"` → `["suv", "pickup"]`: a category filter matches any token. */
  categoryTokens: string[]
  detectedAt: Date
  suspicious: boolean
  source: KafkaCoordinates
}

/** The view of a detection that leaves the store (API responses). */
export interface Detection {
  id: string
  year: number
  make: string
  model: string
  category: string
  detectedAt: Date
  suspicious: boolean
}

export function normalizeKey(value: string): string {
  return value.trim().toLowerCase()
}

export function categoryTokens(category: string): string[] {
  return category
    .split(',')
    .map(normalizeKey)
    .filter((token) => token.length > 0)
}

/**
 * Deterministic id from the record's Kafka coordinates, so a redelivered record maps to the same
 * document. Offsets alone are not enough: a deleted and re-created topic restarts at offset 0,
 * and the record timestamp tells those records apart. 128 bits of SHA-256, base64url: 22 chars.
 */
export function detectionId(coordinates: KafkaCoordinates): string {
  const { topic, partition, offset, timestamp } = coordinates
  return createHash('sha256')
    .update(`${topic}\u0000${partition}\u0000${offset}\u0000${timestamp}`)
    .digest()
    .subarray(0, 16)
    .toString('base64url')
}

export function toDetectionDocument(
  message: DetectionMessage,
  coordinates: KafkaCoordinates,
  suspicious: boolean,
): DetectionDocument {
  return {
    _id: detectionId(coordinates),
    year: message.Year,
    make: message.Make,
    model: message.Model,
    category: message.Category,
    makeKey: normalizeKey(message.Make),
    modelKey: normalizeKey(message.Model),
    categoryKey: normalizeKey(message.Category),
    categoryTokens: categoryTokens(message.Category),
    detectedAt: new Date(coordinates.timestamp),
    suspicious,
    source: coordinates,
  }
}

export function toDetection(document: DetectionDocument): Detection {
  return {
    id: document._id,
    year: document.year,
    make: document.make,
    model: document.model,
    category: document.category,
    detectedAt: document.detectedAt,
    suspicious: document.suspicious,
  }
}
