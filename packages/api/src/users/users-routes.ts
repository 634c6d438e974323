import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { HttpError, problemResponses, problemSchema } from '../http/problem.js'
import { SECURED } from '../plugins/swagger.js'
import { MAX_PASSWORD_BYTES, type PasswordHasher } from './password-hasher.js'
import type { UsersRepository } from './users-repository.js'
import { createUserBodySchema, userSchema } from './users-schemas.js'

export interface UsersRoutesOptions {
  users: UsersRepository
  hasher: PasswordHasher
  rateLimit: { max: number; timeWindow: number }
}

export const usersRoutes: FastifyPluginAsyncZod<UsersRoutesOptions> = async (
  app,
  { users, hasher, rateLimit },
) => {
  app.post(
    '/users',
    {
      // Each sign-up costs a bcrypt hash: limit it like logins.
      config: { rateLimit },
      schema: {
        tags: ['users'],
        operationId: 'createUser',
        summary: 'Create a user',
        description:
          'Registers an account. Usernames are unique case-insensitively; the password is stored as a bcrypt hash ' +
          'and never returned.',
        body: createUserBodySchema,
        response: {
          201: userSchema,
          ...problemResponses(409, 413, 415, 429, 500),
          // JSON Schema counts characters, bcrypt bytes: a password of at most 72 characters can
          // still be too long, which only this 400 can say.
          400: problemSchema.describe(
            `Invalid username or password, including a password of more than ${MAX_PASSWORD_BYTES} bytes in UTF-8`,
          ),
        },
      },
    },
    async (request, reply) => {
      const { username, password } = request.body
      const user = await users.create(username, await hasher.hash(password))
      request.log.info({ userId: user.id }, 'user created')
      return reply.code(201).send(user)
    },
  )

  app.get(
    '/users/me',
    {
      preHandler: app.authenticate,
      schema: {
        tags: ['users'],
        operationId: 'getCurrentUser',
        summary: 'The signed-in user, with its role',
        description:
          'Read from the database on every call: a role granted after the token was issued shows at once.',
        security: SECURED,
        response: { 200: userSchema, ...problemResponses(401, 500) },
      },
    },
    async (request) => {
      const user = await users.findById(request.user.sub)
      if (!user) throw new HttpError('UNAUTHORIZED', 'The access token names a user that no longer exists.')
      return user
    },
  )
}
