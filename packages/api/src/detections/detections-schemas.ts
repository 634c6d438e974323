import {
  BUCKET_MS,
  ceilToBucket,
  DEFAULT_TIMESERIES_TOP,
  floorToBucket,
  MAX_TIMESERIES_BUCKETS,
  STATS_DIMENSIONS,
  TIMESERIES_BUCKETS,
} from '@intellisite/detections-store'
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

// NUL cannot be stored (BSON keys, PostgreSQL text), so no detection can match it: rejected here
// rather than failing in the store.
const filterText = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(200)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is the character being rejected
  .regex(/^[^\u0000]*$/, 'must not contain NUL characters')

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
      .describe(
        '`nextCursor` from the previous page: keyset paging, constant cost at any depth. Not combinable with ' +
          '`skip` (400), and only valid with the filters of the page that returned it',
      ),
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
    to: instant
      .optional()
      .describe(
        'Detected before this instant (ISO-8601, exclusive); must be later than `from` (400 otherwise)',
      ),
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
    total: z
      .number()
      .int()
      .describe(
        'Detections matching the filters that can be paged through (all pages; retention removes old ones)',
      ),
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

/** Buckets in the default range (`from` = `to` minus this many buckets). */
export const DEFAULT_TIMESERIES_BUCKETS = 60
export const MAX_TIMESERIES_TOP = 20

export const timeseriesQuerySchema = z
  .object({
    bucket: z
      .enum(TIMESERIES_BUCKETS, { error: `bucket must be one of ${TIMESERIES_BUCKETS.join(', ')}` })
      .default('minute')
      .describe('Bucket width; buckets are UTC (a day starts at 00:00Z)'),
    from: instant
      .optional()
      .describe(
        `Start (ISO-8601), floored to the bucket. Default: \`to\` minus ${DEFAULT_TIMESERIES_BUCKETS} buckets. ` +
          `The range may hold at most ${MAX_TIMESERIES_BUCKETS} buckets (400 beyond).`,
      ),
    to: instant
      .optional()
      .describe(
        'End (ISO-8601, exclusive), ceiled to the bucket. Default: now. Must be later than `from` (400 otherwise)',
      ),
    group_by: z
      .enum(STATS_DIMENSIONS, { error: `group_by must be one of ${STATS_DIMENSIONS.join(', ')}` })
      .optional()
      .describe('Also count per make, model, category or year, for the top groups over the range'),
    top: z.coerce
      .number({ error: 'top must be a number' })
      .int('top must be an integer')
      .min(1, 'top must be >= 1')
      .max(MAX_TIMESERIES_TOP, `top must be <= ${MAX_TIMESERIES_TOP}`)
      .default(DEFAULT_TIMESERIES_TOP)
      .describe(
        `How many groups, largest total over the range first (1–${MAX_TIMESERIES_TOP}, default ${DEFAULT_TIMESERIES_TOP}); ` +
          'ignored without group_by',
      ),
  })
  .transform((query) => {
    const to = ceilToBucket(query.to ?? new Date(), query.bucket)
    const from = floorToBucket(
      query.from ?? new Date(to.getTime() - DEFAULT_TIMESERIES_BUCKETS * BUCKET_MS[query.bucket]),
      query.bucket,
    )
    return { ...query, from, to }
  })
  .superRefine((query, ctx) => {
    if (!(query.from < query.to)) {
      ctx.addIssue({ code: 'custom', path: ['from'], message: 'from must be earlier than to' })
      return
    }
    const buckets = (query.to.getTime() - query.from.getTime()) / BUCKET_MS[query.bucket]
    if (buckets > MAX_TIMESERIES_BUCKETS) {
      ctx.addIssue({
        code: 'custom',
        path: ['from'],
        message: `the range holds ${buckets} ${query.bucket} buckets; at most ${MAX_TIMESERIES_BUCKETS} per request`,
      })
    }
  })

const count = z.number().int().min(0)

export const timeseriesSchema = z
  .object({
    bucket: z.enum(TIMESERIES_BUCKETS),
    from: z.date().describe('Start of the first bucket (the requested `from`, floored)'),
    to: z.date().describe('End of the last bucket, exclusive (the requested `to`, ceiled)'),
    group_by: z.enum(STATS_DIMENSIONS).nullable(),
    available: z
      .array(z.enum(TIMESERIES_BUCKETS))
      .describe(
        'The bucket widths kept for the whole range. Retention drops minute buckets first, then hour ' +
          'buckets, as they age (day buckets are kept for ever); a range that begins before its width was ' +
          'dropped is a 400 naming the widths to use instead',
      ),
    points: z
      .array(
        z.object({
          start: z.date().describe('Bucket start (UTC)'),
          total: count.describe('Detections in the bucket'),
          suspicious: count.describe('Suspicious detections (alerts) in the bucket'),
        }),
      )
      .describe('Every bucket of [from, to), oldest first, zeros included'),
    groups: z
      .array(
        z.object({
          value: z.string().describe('Display spelling, as /stats gives it'),
          total: count.describe('Detections of this group over the range'),
          counts: z.array(count).describe('One count per point, in the same order'),
        }),
      )
      .describe('The top groups by total over the range, largest first; [] without group_by'),
  })
  .meta({
    id: 'Timeseries',
    examples: [
      {
        bucket: 'minute',
        from: '2026-11-23T20:00:00.000Z',
        to: '2026-11-23T20:03:00.000Z',
        group_by: 'make',
        available: ['minute', 'hour', 'day'],
        points: [
          { start: '2026-11-23T20:00:00.000Z', total: 3, suspicious: 1 },
          { start: '2026-11-23T20:01:00.000Z', total: 0, suspicious: 0 },
          { start: '2026-11-23T20:02:00.000Z', total: 2, suspicious: 2 },
        ],
        groups: [
          { value: 'Toyota', total: 3, counts: [2, 0, 1] },
          { value: 'Mazda', total: 2, counts: [1, 0, 1] },
        ],
      },
    ],
  })
