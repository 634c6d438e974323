import type { Pool } from 'pg'

export interface User {
  id: string
  username: string
  createdAt: Date
}

export interface UserCredentials extends User {
  passwordHash: string
}

export class UsernameTakenError extends Error {
  readonly code = 'USERNAME_TAKEN'
  readonly statusCode = 409
  constructor(cause?: unknown) {
    super('That username is already taken (usernames are case-insensitive).', { cause })
  }
}

const UNIQUE_VIOLATION = '23505'

export function createUsersRepository(pool: Pool) {
  async function create(username: string, passwordHash: string): Promise<User> {
    try {
      const { rows } = await pool.query<{ id: string; username: string; created_at: Date }>(
        'INSERT INTO users (username, password_hash) VALUES ($1, $2) RETURNING id, username, created_at',
        [username, passwordHash],
      )
      const row = rows[0]!
      return { id: row.id, username: row.username, createdAt: row.created_at }
    } catch (err) {
      // The unique index decides, not a prior SELECT: two concurrent sign-ups cannot both win.
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) throw new UsernameTakenError(err)
      throw err
    }
  }

  async function findByUsername(username: string): Promise<UserCredentials | null> {
    const { rows } = await pool.query<{
      id: string
      username: string
      created_at: Date
      password_hash: string
    }>('SELECT id, username, created_at, password_hash FROM users WHERE lower(username) = lower($1)', [
      username,
    ])
    const row = rows[0]
    return row
      ? { id: row.id, username: row.username, createdAt: row.created_at, passwordHash: row.password_hash }
      : null
  }

  return { create, findByUsername }
}

export type UsersRepository = ReturnType<typeof createUsersRepository>
