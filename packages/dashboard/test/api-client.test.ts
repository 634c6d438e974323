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
})
