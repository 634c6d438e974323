import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { HttpError, problemResponses } from '../http/problem.js'
import { MAX_PASSWORD_BYTES, type PasswordHasher } from '../users/password-hasher.js'
import type { UsersRepository } from '../users/users-repository.js'

export const tokenRequestSchema = z
  .object({
    grant_type: z
      .literal('password', { error: 'grant_type must be "password" (the only supported grant)' })
      .optional()
      .describe('OAuth2 grant type; required by OAuth2 clients, optional for JSON'),
    username: z.string({ error: 'username is required' }).min(1, 'username is required').max(256),
    password: z.string({ error: 'password is required' }).min(1, 'password is required').max(1024),
    scope: z.string().optional().describe('Ignored: tokens carry no scopes'),
    client_id: z.string().optional().describe('Ignored'),
    client_secret: z.string().optional().describe('Ignored'),
  })
  .meta({ examples: [{ username: 'alice', password: 'correct horse battery staple' }] })

export const tokenResponseSchema = z
  .object({
    access_token: z.string().describe('JWT (HS256) to send as `Authorization: Bearer <token>`'),
    token_type: z.literal('bearer'),
    expires_in: z.number().int().describe('Seconds until the token expires'),
  })
  .meta({
    id: 'TokenResponse',
    examples: [
      {
        access_token: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.signature',
        token_type: 'bearer',
        expires_in: 3600,
      },
    ],
  })

export interface AuthRoutesOptions {
  users: UsersRepository
  hasher: PasswordHasher
  expiresInSeconds: number
  rateLimit: { max: number; timeWindow: number }
}

function invalidCredentials(): HttpError {
  return new HttpError('INVALID_CREDENTIALS', 'The username or password is incorrect.', {
    headers: { 'www-authenticate': 'Bearer realm="intellisite"' },
  })
}

export const authRoutes: FastifyPluginAsyncZod<AuthRoutesOptions> = async (app, options) => {
  const { users, hasher, expiresInSeconds, rateLimit } = options
  app.post(
    '/auth/token',
    {
      config: { rateLimit },
      schema: {
        tags: ['auth'],
        operationId: 'createToken',
        summary: 'Log in: exchange a username and password for an access token',
        description:
          'Accepts JSON or the OAuth2 password grant form (`application/x-www-form-urlencoded`, ' +
          '`grant_type=password`), which is what Swagger UI’s Authorize button sends. Unknown users and wrong ' +
          'passwords get the same 401. Rate-limited per client.',
        consumes: ['application/json', 'application/x-www-form-urlencoded'],
        body: tokenRequestSchema,
        response: { 200: tokenResponseSchema, ...problemResponses(400, 401, 413, 415, 429, 500) },
      },
    },
    async (request, reply) => {
      const { username, password } = request.body
      const user = await users.findByUsername(username)
      // Both failure paths spend one bcrypt comparison, so timing does not reveal which usernames exist.
      const tooLong = Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES
      const valid =
        user && !tooLong
          ? await hasher.verify(password, user.passwordHash)
          : await hasher.verifyAgainstDummy(password)
      if (!user || !valid) {
        request.log.info({ reason: user ? 'wrong password' : 'unknown user' }, 'login refused')
        throw invalidCredentials()
      }
      const accessToken = app.jwt.sign({ sub: user.id, username: user.username })
      // RFC 6749 §5.1: token responses must not be cached.
      reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
      return { access_token: accessToken, token_type: 'bearer' as const, expires_in: expiresInSeconds }
    },
  )
}
