import { describe, expect, it } from 'vitest'
import { useTestApp } from './helper.js'

describe('POST /users', () => {
  const t = useTestApp()

  it('creates a user and answers 201 with id, username, role and createdAt only', async () => {
    const before = Date.now()
    const response = await t.inject({
      method: 'POST',
      url: '/users',
      payload: { username: 'Alice', password: 'correct horse battery staple' },
    })
    expect(response.statusCode).toBe(201)
    const body = response.json()
    expect(Object.keys(body).sort()).toEqual(['createdAt', 'id', 'role', 'username'])
    expect(body.role).toBe('user')
    expect(body.username).toBe('Alice')
    expect(body.id).toMatch(/^[0-9a-f-]{36}$/)
    expect(new Date(body.createdAt).getTime()).toBeGreaterThanOrEqual(before - 5_000)
    expect(response.body).not.toContain('correct horse')

    const { rows } = await t.pool.query('SELECT password_hash FROM users WHERE id = $1', [body.id])
    expect(rows[0].password_hash).toMatch(/^\$2b\$04\$/)
  })

  it.each(['Alice', 'alice', 'ALICE', 'aLiCe'])(
    'refuses %s as a duplicate of Alice (409)',
    async (username) => {
      const response = await t.inject({
        method: 'POST',
        url: '/users',
        payload: { username, password: 'another password' },
      })
      expect(response.statusCode).toBe(409)
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/)
      expect(response.json()).toMatchObject({ status: 409, code: 'USERNAME_TAKEN' })
    },
  )

  it('lets exactly one of two concurrent sign-ups with the same name win', async () => {
    const responses = await Promise.all(
      ['Racer', 'racer', 'RACER'].map((username) =>
        t.inject({ method: 'POST', url: '/users', payload: { username, password: 'password123' } }),
      ),
    )
    expect(responses.map((r) => r.statusCode).sort()).toEqual([201, 409, 409])
  })

  const invalid: [string, unknown, string, RegExp][] = [
    ['missing username', { password: 'password123' }, '/username', /required/],
    ['short username', { username: 'ab', password: 'password123' }, '/username', /at least 3/],
    ['long username', { username: 'a'.repeat(65), password: 'password123' }, '/username', /at most 64/],
    [
      'username with spaces',
      { username: 'bob smith', password: 'password123' },
      '/username',
      /letters, digits/,
    ],
    ['numeric username', { username: 12345, password: 'password123' }, '/username', /string/],
    ['missing password', { username: 'bob' }, '/password', /required/],
    ['short password', { username: 'bob', password: 'short' }, '/password', /at least 8/],
    // 37 × "é" is 37 characters but 74 bytes: bcrypt would silently ignore the last 2.
    ['password over 72 bytes', { username: 'bob', password: 'é'.repeat(37) }, '/password', /72 bytes/],
  ]
  it.each(invalid)('answers 400 naming the field for %s', async (_name, payload, path, message) => {
    const response = await t.inject({ method: 'POST', url: '/users', payload: payload as object })
    expect(response.statusCode).toBe(400)
    const problem = response.json()
    expect(problem.code).toBe('VALIDATION_FAILED')
    const error = problem.errors.find((e: { path: string }) => e.path === path)
    expect(error, JSON.stringify(problem.errors)).toBeDefined()
    expect(error.in).toBe('body')
    expect(error.message).toMatch(message)
  })

  it('drops a __proto__ key from a JSON body instead of rejecting the body', async () => {
    const username = `proto_${Date.now()}`
    const response = await t.inject({
      method: 'POST',
      url: '/users',
      headers: { 'content-type': 'application/json' },
      payload: `{"username":"${username}","password":"password123","__proto__":{"admin":true}}`,
    })
    expect(response.statusCode).toBe(201)
    expect(response.json()).not.toHaveProperty('admin')
    expect(({} as { admin?: boolean }).admin).toBeUndefined()
  })

  it('accepts a password of exactly 72 bytes', async () => {
    const response = await t.inject({
      method: 'POST',
      url: '/users',
      payload: { username: 'max-bytes', password: 'é'.repeat(36) },
    })
    expect(response.statusCode).toBe(201)
  })

  it('answers 400 for a body that is not JSON and 415 for an unsupported media type', async () => {
    const malformed = await t.inject({
      method: 'POST',
      url: '/users',
      headers: { 'content-type': 'application/json' },
      payload: '{"username":',
    })
    expect(malformed.statusCode).toBe(400)
    expect(malformed.json().code).toBe('MALFORMED_BODY')
    const xml = await t.inject({
      method: 'POST',
      url: '/users',
      headers: { 'content-type': 'application/xml' },
      payload: '<user/>',
    })
    expect(xml.statusCode).toBe(415)
    expect(xml.json().code).toBe('UNSUPPORTED_MEDIA_TYPE')
  })

  it('answers 413 for an oversized body', async () => {
    const response = await t.inject({
      method: 'POST',
      url: '/users',
      payload: { username: 'big', password: 'x'.repeat(100_000) },
    })
    expect(response.statusCode).toBe(413)
    expect(response.json().code).toBe('PAYLOAD_TOO_LARGE')
  })

  it('never writes a password to the logs', async () => {
    const password = 'Sup3r-Secret-Pa55word-do-not-log'
    await t.inject({ method: 'POST', url: '/users', payload: { username: 'logcheck', password } })
    await t.inject({ method: 'POST', url: '/users', payload: { username: 'logcheck', password } })
    await t.inject({ method: 'POST', url: '/users', payload: { username: 'x', password } })
    await t.inject({ method: 'POST', url: '/auth/token', payload: { username: 'logcheck', password } })
    await t.inject({
      method: 'POST',
      url: '/auth/token',
      payload: { username: 'logcheck', password: `${password}!` },
    })
    await t.inject({
      method: 'POST',
      url: '/auth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `grant_type=password&username=logcheck&password=${encodeURIComponent(password)}`,
    })
    const text = t.logs.text()
    expect(t.logs.lines.length).toBeGreaterThan(10)
    expect(text).toContain('user created')
    expect(text).not.toContain(password)
    expect(text).not.toMatch(/\$2b\$/)
  })
})
