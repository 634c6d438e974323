import fastifyJwt from '@fastify/jwt'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { HttpError } from '../http/problem.js'

export interface TokenClaims {
  /** User id. */
  sub: string
  username: string
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: TokenClaims
    user: TokenClaims
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler that requires `Authorization: Bearer <jwt>` and sets `request.user`. */
    authenticate: (request: FastifyRequest) => Promise<void>
    /**
     * Verifies an access token however it came (header, or the `access_token` query parameter of
     * a browser EventSource); throws the same 401 problems as `authenticate`.
     */
    verifyAccessToken: (token: string | undefined, options?: { queryParameter?: string }) => AccessClaims
  }
}

export interface AccessClaims extends TokenClaims {
  /** Expiry, epoch seconds. */
  exp?: number
}

export interface AuthOptions {
  secret: string
  expiresInSeconds: number
}

const CHALLENGE = 'Bearer realm="intellisite"'

/** Expired tokens get their own code so clients know to log in again rather than debug. */
export function unauthorized(
  reason: 'missing' | 'invalid' | 'expired',
  { queryParameter }: { queryParameter?: string } = {},
): HttpError {
  const detail = {
    missing: queryParameter
      ? `An access token is required: \`Authorization: Bearer <token>\` or the \`${queryParameter}\` parameter (get one from POST /auth/token).`
      : 'An access token is required: send `Authorization: Bearer <token>` (get one from POST /auth/token).',
    invalid: 'The access token is invalid.',
    expired: 'The access token has expired: request a new one from POST /auth/token.',
  }[reason]
  const code = reason === 'expired' ? 'TOKEN_EXPIRED' : 'UNAUTHORIZED'
  const header = reason === 'missing' ? CHALLENGE : `${CHALLENGE}, error="invalid_token"`
  return new HttpError(code, detail, { headers: { 'www-authenticate': header } })
}

function isClaims(value: unknown): value is AccessClaims {
  const claims = value as Partial<AccessClaims> | null
  return (
    typeof claims?.sub === 'string' &&
    claims.sub !== '' &&
    typeof claims.username === 'string' &&
    (claims.exp === undefined || typeof claims.exp === 'number')
  )
}

/** The token of an `Authorization: Bearer <token>` header; '' when the header is malformed. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined || header.trim() === '') return undefined
  return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? ''
}

/**
 * HS256 is pinned for signing and verifying: a token whose header says `none` or any other
 * algorithm is rejected before its signature is looked at. `app.jwt.verify` (used by the alerts
 * stream for its `access_token` query parameter) shares the same pinned options.
 */
export const authPlugin = fp<AuthOptions>(
  async (app, options) => {
    await app.register(fastifyJwt, {
      secret: options.secret,
      sign: { algorithm: 'HS256', expiresIn: options.expiresInSeconds },
      verify: { algorithms: ['HS256'] },
    })

    app.decorate('verifyAccessToken', (token: string | undefined, verifyOptions = {}) => {
      if (token === undefined) throw unauthorized('missing', verifyOptions)
      if (token === '') throw unauthorized('invalid')
      let claims: unknown
      try {
        claims = app.jwt.verify(token)
      } catch (err) {
        const code = (err as { code?: string }).code
        throw unauthorized(code === 'FAST_JWT_EXPIRED' ? 'expired' : 'invalid')
      }
      if (!isClaims(claims)) throw unauthorized('invalid')
      return claims
    })

    app.decorate('authenticate', async (request: FastifyRequest) => {
      const claims = app.verifyAccessToken(bearerToken(request.headers.authorization))
      request.user = { sub: claims.sub, username: claims.username }
    })
  },
  { name: 'auth' },
)
