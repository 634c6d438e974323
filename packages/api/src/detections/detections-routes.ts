import {
  type DetectionFilters,
  type DetectionsRepository,
  MAX_TIMESERIES_BUCKETS,
} from '@intellisite/detections-store'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { problemResponses, problemSchema } from '../http/problem.js'
import { SECURED } from '../plugins/swagger.js'
import {
  detectionsPageSchema,
  listDetectionsQuerySchema,
  statsQuerySchema,
  statsSchema,
  timeseriesQuerySchema,
  timeseriesSchema,
} from './detections-schemas.js'

export interface DetectionsRoutesOptions {
  repository: DetectionsRepository
}

export const detectionsRoutes: FastifyPluginAsyncZod<DetectionsRoutesOptions> = async (
  app,
  { repository },
) => {
  app.addHook('preHandler', app.authenticate)

  app.get(
    '/detections',
    {
      schema: {
        tags: ['detections'],
        operationId: 'listDetections',
        summary: 'Page through detections, newest first',
        description:
          'Offset paging with `skip`/`limit`, or keyset paging with `cursor` (from `nextCursor`), which costs the ' +
          'same at any depth and never repeats or skips a detection while new ones arrive. Filters combine with AND.',
        security: SECURED,
        querystring: listDetectionsQuerySchema,
        response: {
          200: detectionsPageSchema,
          ...problemResponses(401, 500),
          // Rules between parameters, which OpenAPI cannot state per parameter: a request that
          // passes every parameter's schema can still get this 400.
          400: problemSchema.describe(
            'Invalid parameter, or parameters that do not go together: `cursor` with `skip`; `from` not earlier ' +
              'than `to`; a `cursor` that is not a `nextCursor` this API returned (cursors are opaque)',
          ),
        },
      },
    },
    async (request) => {
      const { skip, limit, cursor, make, model, category, year, from, to } = request.query
      const filters: DetectionFilters = { make, model, category, year, from, to }
      const [page, total] = await Promise.all([
        repository.list({ limit, skip, cursor, filters }),
        repository.count(filters),
      ])
      return { items: page.items, total, skip: skip ?? 0, limit, nextCursor: page.nextCursor }
    },
  )

  app.get(
    '/stats',
    {
      schema: {
        tags: ['detections'],
        operationId: 'getStats',
        summary: 'Count detections per make, model, category or year',
        description:
          'Exact counts kept by the indexer as it stores detections, so this costs the same at any volume. ' +
          'All time: detections removed by retention (DETECTIONS_RETENTION) stay counted here, while the `total` ' +
          'of GET /detections counts only what can still be paged through. ' +
          'Values are grouped case-insensitively (`MAZDA` and `Mazda` are one make).',
        security: SECURED,
        querystring: statsQuerySchema,
        response: { 200: statsSchema, ...problemResponses(400, 401, 500) },
      },
    },
    async (request) => {
      const dimension = request.query.group_by
      const stats = await repository.stats(dimension)
      return { group_by: dimension, total: stats.total, items: stats.items }
    },
  )

  app.get(
    '/stats/timeseries',
    {
      schema: {
        tags: ['detections'],
        operationId: 'getStatsTimeseries',
        summary: 'Count detections and suspicious ones per minute, hour or day, optionally per group',
        description:
          'Exact counts kept by the indexer in the same write as the detections (each detection counted once, ' +
          'also when Kafka redelivers it), bucketed by the Kafka record timestamp in UTC. `from` is floored and ' +
          '`to` ceiled to the bucket; every bucket of the range is returned, zeros included. At most ' +
          `${MAX_TIMESERIES_BUCKETS} buckets per request (400 beyond). With \`group_by\`, \`groups\` holds the \`top\` ` +
          'groups by total over the range with one count per point. Retention downsamples: minute buckets are kept ' +
          'for a period (7 days by default), hour buckets longer (90 days), day buckets for ever; `available` lists ' +
          'the widths kept for the whole range, and a range that starts before its width was dropped is a 400 ' +
          '(`TIMESERIES_WIDTH_DROPPED`) that names them.',
        security: SECURED,
        querystring: timeseriesQuerySchema,
        response: {
          200: timeseriesSchema,
          ...problemResponses(401, 500),
          400: problemSchema.describe(
            `Invalid parameter, or parameters that do not go together: \`from\` not earlier than \`to\`; more than ` +
              `${MAX_TIMESERIES_BUCKETS} buckets between them; a range that starts before retention dropped this ` +
              'bucket width (code `TIMESERIES_WIDTH_DROPPED`; the detail names the widths available for it)',
          ),
        },
      },
    },
    async (request) => {
      const { bucket, from, to, group_by, top } = request.query
      const series = await repository.timeseries({ bucket, from, to, groupBy: group_by, top })
      return {
        bucket: series.bucket,
        from: series.from,
        to: series.to,
        group_by: series.groupBy,
        available: series.available,
        points: series.points,
        groups: series.groups,
      }
    },
  )
}
