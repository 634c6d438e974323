import type { FastifyPluginAsync } from 'fastify'
import type { PasswordHasher } from './password-hasher.js'
import type { UsersRepository } from './users-repository.js'

export interface AdminBootstrapOptions {
  users: Pick<UsersRepository, 'ensureAdmin'>
  hasher: Pick<PasswordHasher, 'hash'>
  username: string
  password: string
}

/**
 * The configured first admin (ADMIN_USERNAME, ADMIN_PASSWORD), made sure of when the app gets
 * ready: created if missing, promoted if present. An existing user's password is never replaced
 * from configuration: changing ADMIN_PASSWORD later cannot take over an account.
 */
export const adminBootstrapPlugin: FastifyPluginAsync<AdminBootstrapOptions> = async (app, options) => {
  app.addHook('onReady', async () => {
    const admin = await options.users.ensureAdmin(
      options.username,
      await options.hasher.hash(options.password),
    )
    app.log.info(
      { userId: admin.id, username: admin.username, created: admin.created },
      admin.created ? 'configured admin created' : 'configured admin is an admin',
    )
  })
}
