import { STATS_DIMENSIONS } from '@intellisite/detections-store'
import { z } from 'zod'

export const DEFAULT_LIMIT = 50
export const MAX_LIMIT = 1000
/** Offset paging costs grow with depth; past this, the cursor is the way (constant cost at any depth). */
export const MAX_SKIP = 1_000_000

const instant = z
  .union([z.iso.datetime({ offset: true }), z.iso.date()], {
    error: 'must be an ISO-8601 date-time with a time zone (2026-11-23T20:00:00Z) or a date (2026-11-23)',
  })
  .transform((value) => new Date(value))

const filterText = z.string().trim().min(1, 'must not be empty').max(200)

export const listDetectionsQuerySchema = z
  .object({
    skip: z.coerce
      .number({ error: 'skip must be a number' })
      .int('skip must be an integer')
      .min(0, 'skip must be >= 0')
      .max(MAX_SKIP, `skip must be <= ${MAX_SKIP}; use cursor for deeper pages`)
      .optional()
      .describe(`Detections to skip (offset paging, max ${MAX_SKIP}). Not combinable with cursor.`),
    limit: z.coerce
      .number({ error: 'limit must be a number' })
      .int('limit must be an integer')
      .min(1, 'limit must be >= 1')
      .max(MAX_LIMIT, `limit must be <= ${MAX_LIMIT}`)
      .default(DEFAULT_LIMIT)
      .describe(`Page size, 1–${MAX_LIMIT} (default ${DEFAULT_LIMIT})`),
    cursor: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe('`nextCursor` from the previous page: keyset paging, constant cost at any depth'),
    make: filterText.optional().describe('Exact make, case-insensitive (`mazda` matches `MAZDA`)'),
    model: filterText.optional().describe('Exact model, case-insensitive'),
    category: filterText
      .optional()
      .describe('A category token, case-insensitive: `suv` matches `SUV` and `SUV, Pickup`'),
    year: z.coerce
      .number({ error: 'year must be a number' })
      .int('year must be an integer')
      .min(1886)
      .max(2200)
      .optional()
      .describe('Model year'),
    from: instant.optional().describe('Detected at or after this instant (ISO-8601)'),
    to: instant.optional().describe('Detected before this instant (ISO-8601, exclusive)'),
  })
  .superRefine((query, ctx) => {
    if (query.from && query.to && !(query.from < query.to)) {
      ctx.addIssue({ code: 'custom', path: ['to'], message: 'to must be later than from' })
    }
    if (query.cursor !== undefined && query.skip !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['cursor'], message: 'use either skip or cursor, not both' })
    }
  })

export const detectionSchema = z
  .object({
    id: z.string().describe('Stable id derived from the Kafka record coordinates'),
    year: z.number().int(),
    make: z.string(),
    model: z.string(),
    category: z.string(),
    detectedAt: z.date().describe('Kafka record timestamp'),
    suspicious: z.boolean().describe('Whether the category matched SUSPICIOUS_VEHICLE when indexed'),
  })
  .meta({ id: 'Detection' })

const exampleDetection = {
  id: 'q0P3b0kM5iQ2yB3Q5zN2Xg',
  year: 2011,
  make: 'Toyota',
  model: 'Land Cruiser',
  category: 'SUV',
  detectedAt: '2026-11-23T20:15:00.000Z',
  suspicious: true,
}

export const detectionsPageSchema = z
  .object({
    items: z.array(detectionSchema).describe('Newest first; ties broken by id'),
    total: z.number().int().describe('Detections matching the filters (all pages)'),
    skip: z.number().int(),
    limit: z.number().int(),
    nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page'),
  })
  .meta({
    id: 'DetectionsPage',
    examples: [{ items: [exampleDetection], total: 1, skip: 0, limit: 50, nextCursor: null }],
  })

export const statsQuerySchema = z.object({
  group_by: z
    .enum(STATS_DIMENSIONS, { error: `group_by must be one of ${STATS_DIMENSIONS.join(', ')}` })
    .default('make')
    .describe('Dimension to count by'),
})

export const statsSchema = z
  .object({
    group_by: z.enum(STATS_DIMENSIONS),
    total: z.number().int().describe('All detections counted'),
    items: z
      .array(z.object({ value: z.string(), count: z.number().int() }))
      .describe('Count descending, then value ascending'),
  })
  .meta({
    id: 'Stats',
    examples: [
      {
        group_by: 'make',
        total: 3,
        items: [
          { value: 'Toyota', count: 2 },
          { value: 'Mazda', count: 1 },
        ],
      },
    ],
  })
