import { createHmac } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { createTestApp, createUserAndToken, type TestApp, useTestApp } from './helper.js'

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

function signHs(secret: string, payload: object, alg: 'HS256' | 'HS512' = 'HS256'): string {
  const head = `${b64({ alg, typ: 'JWT' })}.${b64(payload)}`
  const hash = alg === 'HS256' ? 'sha256' : 'sha512'
  return `${head}.${createHmac(hash, secret).update(head).digest('base64url')}`
}

/** Every operation the OpenAPI document marks as secured: new protected routes are covered automatically. */
function protectedOperations(t: TestApp): { method: string; url: string }[] {
  const operations: { method: string; url: string }[] = []
  const paths = t.app.swagger().paths ?? {}
  for (const [url, item] of Object.entries(paths)) {
    for (const [method, operation] of Object.entries(item as Record<string, { security?: unknown[] }>)) {
      if (operation.security && operation.security.length > 0)
        operations.push({ method: method.toUpperCase(), url })
    }
  }
  return operations
}

describe('authentication', () => {
  const t = useTestApp()

  it('protects /detections and /stats', () => {
    expect(protectedOperations(t).map((o) => o.url)).toEqual(
      expect.arrayContaining(['/detections', '/stats']),
    )
  })

  it('answers 401 without a token, with a malformed header, a tampered signature, alg none, another algorithm, a foreign secret or an expired token', async () => {
    const { token, user, username } = await createUserAndToken(t)
    const now = Math.floor(Date.now() / 1000)
    const claims = { sub: user.id, username, iat: now }
    const [head, body, signature] = token.split('.') as [string, string, string]
    // Change a character in the middle: the last one may only carry padding bits.
    const middle = Math.floor(signature.length / 2)
    const flipped = signature[middle] === 'A' ? 'B' : 'A'
    const cases: [string, Record<string, string>, string][] = [
      ['no header', {}, 'UNAUTHORIZED'],
      ['basic scheme', { authorization: 'Basic dXNlcjpwYXNz' }, 'UNAUTHORIZED'],
      ['garbage token', { authorization: 'Bearer not.a.jwt' }, 'UNAUTHORIZED'],
      [
        'tampered signature',
        {
          authorization: `Bearer ${head}.${body}.${signature.slice(0, middle)}${flipped}${signature.slice(middle + 1)}`,
        },
        'UNAUTHORIZED',
      ],
      [
        'tampered payload',
        { authorization: `Bearer ${head}.${b64({ ...claims, username: 'admin' })}.${signature}` },
        'UNAUTHORIZED',
      ],
      [
        'alg none',
        { authorization: `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.` },
        'UNAUTHORIZED',
      ],
      ['HS512', { authorization: `Bearer ${signHs(t.config.JWT_SECRET, claims, 'HS512')}` }, 'UNAUTHORIZED'],
      ['foreign secret', { authorization: `Bearer ${signHs('x'.repeat(32), claims)}` }, 'UNAUTHORIZED'],
      [
        'missing claims',
        { authorization: `Bearer ${signHs(t.config.JWT_SECRET, { iat: now })}` },
        'UNAUTHORIZED',
      ],
      [
        'expired',
        {
          authorization: `Bearer ${signHs(t.config.JWT_SECRET, { ...claims, iat: now - 120, exp: now - 60 })}`,
        },
        'TOKEN_EXPIRED',
      ],
    ]
    for (const operation of protectedOperations(t)) {
      for (const [name, headers, code] of cases) {
        const response = await t.inject({ ...operation, headers } as never)
        expect(response.statusCode, `${operation.method} ${operation.url} ${name}`).toBe(401)
        expect(response.headers['content-type']).toMatch(/^application\/problem\+json/)
        expect(response.headers['www-authenticate']).toMatch(/^Bearer realm="intellisite"/)
        expect(response.json().code, name).toBe(code)
      }
      // Past authentication, a bare request (no body, the path template as its id) gets the route's
      // own answer: 200 for reads, a 4xx other than 401 for routes that need a body or an id.
      const good = await t.inject({ ...operation, headers: { authorization: `Bearer ${token}` } } as never)
      const goodStatus = operation.method === 'GET' && !operation.url.includes('{') ? 200 : good.statusCode
      expect(good.statusCode, `${operation.method} ${operation.url} with a good token`).toBe(goodStatus)
      expect(good.statusCode, `${operation.method} ${operation.url} with a good token`).not.toBe(401)
      expect(good.statusCode).toBeLessThan(500)
      // A token we signed ourselves with the right secret and algorithm is accepted: the cases above fail for their reason.
      const forged = signHs(t.config.JWT_SECRET, { ...claims, exp: now + 60 })
      const valid = await t.inject({ ...operation, headers: { authorization: `Bearer ${forged}` } } as never)
      expect(valid.statusCode).toBe(good.statusCode)
    }
  })
})

describe('POST /auth/token', () => {
  const t = useTestApp({ env: { JWT_EXPIRES_IN: '900' } })

  it('issues an HS256 bearer token with sub, username and the configured expiry from JSON', async () => {
    const { username, password, user } = await createUserAndToken(t, 'Carol')
    // Logins are case-insensitive on the username, like uniqueness.
    const response = await t.inject({
      method: 'POST',
      url: '/auth/token',
      payload: { username: 'carol', password },
    })
    expect(response.statusCode).toBe(200)
    expect(response.headers['cache-control']).toBe('no-store')
    const body = response.json()
    expect(body.token_type).toBe('bearer')
    expect(body.expires_in).toBe(900)
    const [head, payload] = body.access_token.split('.')
    expect(JSON.parse(Buffer.from(head, 'base64url').toString())).toMatchObject({ alg: 'HS256' })
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString())
    expect(claims).toMatchObject({ sub: user.id, username })
    expect(claims.exp - claims.iat).toBe(900)
  })

  it('accepts the OAuth2 password grant form that Swagger UI sends', async () => {
    const { username, password } = await createUserAndToken(t)
    const response = await t.inject({
      method: 'POST',
      url: '/auth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({
        grant_type: 'password',
        username,
        password,
        scope: '',
        client_id: '',
      }).toString(),
    })
    expect(response.statusCode).toBe(200)
    const token = response.json().access_token
    const detections = await t.inject({
      method: 'GET',
      url: '/detections',
      headers: { authorization: `Bearer ${token}` },
    })
    expect(detections.statusCode).toBe(200)
  })

  it('rejects other grant types with 400', async () => {
    const response = await t.inject({
      method: 'POST',
      url: '/auth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'grant_type=client_credentials&username=a&password=b',
    })
    expect(response.statusCode).toBe(400)
    expect(response.json().errors[0]).toMatchObject({ path: '/grant_type' })
  })

  it('answers the same 401 for an unknown user and a wrong password', async () => {
    const { username } = await createUserAndToken(t)
    const wrong = await t.inject({
      method: 'POST',
      url: '/auth/token',
      payload: { username, password: 'wrong-password' },
    })
    const unknown = await t.inject({
      method: 'POST',
      url: '/auth/token',
      payload: { username: 'nobody-here', password: 'wrong-password' },
    })
    expect(wrong.statusCode).toBe(401)
    expect(unknown.statusCode).toBe(401)
    const strip = (body: Record<string, unknown>) => ({ ...body, requestId: undefined })
    expect(strip(wrong.json())).toEqual(strip(unknown.json()))
    expect(wrong.json().code).toBe('INVALID_CREDENTIALS')
  })

  it('refuses a password longer than 72 bytes even when its first 72 bytes are right', async () => {
    const username = 'long-password'
    const password = 'p'.repeat(72)
    await t.inject({ method: 'POST', url: '/users', payload: { username, password } })
    const ok = await t.inject({ method: 'POST', url: '/auth/token', payload: { username, password } })
    expect(ok.statusCode).toBe(200)
    const longer = await t.inject({
      method: 'POST',
      url: '/auth/token',
      payload: { username, password: `${password}xyz` },
    })
    expect(longer.statusCode).toBe(401)
  })
})

describe('login timing', () => {
  let t: TestApp
  afterAll(async () => t?.close())

  it('takes about as long for an unknown user as for a wrong password (dummy bcrypt comparison)', async () => {
    // A real cost, so the bcrypt comparison dominates and a missing one would show.
    t = await createTestApp({ env: { BCRYPT_COST: '10' } })
    const { username } = await createUserAndToken(t)
    const time = async (name: string) => {
      const start = performance.now()
      const response = await t.inject({
        method: 'POST',
        url: '/auth/token',
        payload: { username: name, password: 'nope-nope' },
      })
      expect(response.statusCode).toBe(401)
      return performance.now() - start
    }
    const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!
    const known: number[] = []
    const unknown: number[] = []
    for (let i = 0; i < 5; i++) {
      known.push(await time(username))
      unknown.push(await time(`ghost-${i}`))
    }
    const [a, b] = [median(known), median(unknown)]
    expect(Math.min(a, b) / Math.max(a, b), `wrong password ${a} ms, unknown user ${b} ms`).toBeGreaterThan(
      0.6,
    )
  })
})

describe('login rate limit', () => {
  const t = useTestApp({ env: { AUTH_RATE_LIMIT_MAX: '3', AUTH_RATE_LIMIT_WINDOW_MS: '60000' } })

  it('answers 429 problem+json with Retry-After once a client exceeds the limit, per client', async () => {
    const attempt = (ip: string) =>
      t.inject({
        method: 'POST',
        url: '/auth/token',
        remoteAddress: ip,
        payload: { username: 'who', password: 'whatever1' },
      })
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) statuses.push((await attempt('10.0.0.1')).statusCode)
    expect(statuses).toEqual([401, 401, 401, 429, 429])
    const limited = await attempt('10.0.0.1')
    expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(limited.headers['retry-after']).toBeDefined()
    expect(limited.json()).toMatchObject({ status: 429, code: 'RATE_LIMITED' })
    // Another client is not affected.
    expect((await attempt('10.0.0.2')).statusCode).toBe(401)
  })
})
