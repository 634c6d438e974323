import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { problemResponses } from '../http/problem.js'
import type { PasswordHasher } from './password-hasher.js'
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
        response: { 201: userSchema, ...problemResponses(400, 409, 413, 415, 429, 500) },
      },
    },
    async (request, reply) => {
      const { username, password } = request.body
      const user = await users.create(username, await hasher.hash(password))
      request.log.info({ userId: user.id }, 'user created')
      return reply.code(201).send(user)
    },
  )
}
