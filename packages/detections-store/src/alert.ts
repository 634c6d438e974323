import { z } from 'zod'
import type { DetectionDocument } from './detection.js'

/** The message on `intellisite.alerts`, keyed by the detection id. */
export const alertSchema = z.object({
  id: z.string().min(1),
  detectedAt: z.iso.datetime(),
  year: z.number().int(),
  make: z.string(),
  model: z.string(),
  category: z.string(),
  /** Why it alerted, e.g. `category matches SUV`. */
  reason: z.string(),
})
export type Alert = z.infer<typeof alertSchema>

export function buildAlert(document: DetectionDocument, matchedCategory: string): Alert {
  return {
    id: document._id,
    detectedAt: document.detectedAt.toISOString(),
    year: document.year,
    make: document.make,
    model: document.model,
    category: document.category,
    reason: `category matches ${matchedCategory}`,
  }
}
