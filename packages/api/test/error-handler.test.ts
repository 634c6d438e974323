import { describe, expect, it } from 'vitest'
import { createUserAndToken, useTestApp } from './helper.js'

describe('errors of the detections store', () => {
  // The route refuses an inverted range before the store sees it; the store refuses one too, and a
  // query that reaches it anyway is still the client's mistake, not a 500.
  const t = useTestApp({
    wrapRepository: (repository) => ({
      ...repository,
      timeseries: (query) => repository.timeseries({ ...query, from: query.to, to: query.from }),
    }),
  })

  it('answers a TimeseriesRangeError with a 400 problem carrying its code', async () => {
    const { headers } = await createUserAndToken(t)
    const response = await t.inject({
      method: 'GET',
      url: '/stats/timeseries?bucket=hour&from=2026-11-23T00:00:00Z&to=2026-11-24T00:00:00Z',
      headers,
    })
    expect(response.statusCode).toBe(400)
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(response.json()).toMatchObject({
      type: 'urn:intellisite:problem:invalid-timeseries-range',
      status: 400,
      code: 'INVALID_TIMESERIES_RANGE',
      detail: 'from must be earlier than to',
    })
  })
})
