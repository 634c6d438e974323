import { afterEach, describe, expect, it, vi } from 'vitest'
import { ApiError, createApiClient, withQuery } from '../src/api-client.js'

afterEach(() => {
  vi.unstubAllGlobals()
})

function answer(status: number, body: unknown): void {
  vi.stubGlobal(
    'fetch',
    vi.fn(
      async () =>
        new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } }),
    ),
  )
}

describe('api client', () => {
  it('leaves empty filters out of the query', () => {
    expect(
      withQuery('/detections', { make: 'Audi', model: '', year: undefined, cursor: null, limit: 20 }),
    ).toBe('/detections?make=Audi&limit=20')
    expect(withQuery('/stats')).toBe('/stats')
  })

  it('sends the bearer token and turns a 401 into one sign-out', async () => {
    answer(401, { title: 'Unauthorized', code: 'TOKEN_EXPIRED' })
    const onUnauthorized = vi.fn()
    const api = createApiClient({ token: () => 'tok', onUnauthorized })
    await expect(api.get('/stats')).rejects.toMatchObject({ status: 401 })
    const [, init] = vi.mocked(fetch).mock.calls[0]!
    expect((init!.headers as Record<string, string>).authorization).toBe('Bearer tok')
    expect(onUnauthorized).toHaveBeenCalledOnce()
    expect(onUnauthorized.mock.calls[0]![0]).toMatch(/expired/)
  })

  it('reads a 401 on sign-in as wrong credentials, not an expiry', async () => {
    answer(401, { title: 'Unauthorized', detail: 'Invalid username or password' })
    const onUnauthorized = vi.fn()
    const api = createApiClient({ token: () => null, onUnauthorized })
    await expect(api.postPublic('/auth/token', {})).rejects.toBeInstanceOf(ApiError)
    expect(onUnauthorized).not.toHaveBeenCalled()
  })

  it("shows the problem's detail and each invalid field", async () => {
    answer(400, {
      title: 'Bad Request',
      detail: 'The request is invalid',
      code: 'VALIDATION_FAILED',
      errors: [{ in: 'querystring', path: '/year', message: 'year must be a number' }],
    })
    const api = createApiClient({ token: () => 'tok', onUnauthorized: vi.fn() })
    await expect(api.get('/detections', { year: 'x' })).rejects.toMatchObject({
      status: 400,
      code: 'VALIDATION_FAILED',
      message: 'The request is invalid — /year: year must be a number',
    })
  })

  it('lists the invalid rows of an uploaded file by line', async () => {
    answer(400, {
      title: 'Bad Request',
      detail: '2 rows are invalid; nothing was applied.',
      code: 'INVALID_CSV',
      errors: [
        { line: 2, reason: 'model is empty' },
        { line: 4, reason: 'year_min is not a year' },
      ],
    })
    const api = createApiClient({ token: () => 'tok', onUnauthorized: vi.fn() })
    const failure = (await api
      .put('/rules/x/entries', { text: 'a,b', type: 'text/csv' }, 3)
      .catch((err: unknown) => err)) as ApiError
    expect(failure).toBeInstanceOf(ApiError)
    expect(failure.summary).toBe('2 rows are invalid; nothing was applied.')
    expect(failure.details).toEqual(['line 2: model is empty', 'line 4: year_min is not a year'])
  })

  it('sends a CSV as it is, with the version it applies to', async () => {
    answer(200, { id: 'x', version: 4 })
    const api = createApiClient({ token: () => 'tok', onUnauthorized: vi.fn() })
    await api.put('/rules/x/entries', { text: 'make,model\r\nJeep,Wrangler\r\n', type: 'text/csv' }, 3)
    const [path, init] = vi.mocked(fetch).mock.calls[0]!
    const headers = init!.headers as Record<string, string>
    expect(path).toBe('/rules/x/entries')
    expect(init!.method).toBe('PUT')
    expect(headers['content-type']).toBe('text/csv')
    expect(headers['if-match']).toBe('"3"')
    expect(init!.body).toBe('make,model\r\nJeep,Wrangler\r\n')
  })

  it('reads a 204 as nothing, and a CSV as text', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => new Response(null, { status: 204 })),
    )
    const api = createApiClient({ token: () => 'tok', onUnauthorized: vi.fn() })
    await expect(api.delete('/rules/x', 2)).resolves.toBeUndefined()
    expect((vi.mocked(fetch).mock.calls[0]![1]!.headers as Record<string, string>)['if-match']).toBe('"2"')
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => new Response('make,model\r\n', { status: 200 })),
    )
    await expect(api.getText('/rules/x/entries')).resolves.toBe('make,model\r\n')
  })
})
