import { IntellisiteError } from '@intellisite/common'
import type { Pool } from 'pg'

export const USER_ROLES = ['admin', 'user'] as const
export type UserRole = (typeof USER_ROLES)[number]

export interface User {
  id: string
  username: string
  role: UserRole
  createdAt: Date
}

export interface UserCredentials extends User {
  passwordHash: string
}

export class UsernameTakenError extends IntellisiteError<'USERNAME_TAKEN'> {
  constructor(cause?: unknown) {
    super('USERNAME_TAKEN', 'That username is already taken (usernames are case-insensitive).', { cause })
  }
}

const UNIQUE_VIOLATION = '23505'

interface UserRow {
  id: string
  username: string
  role: UserRole
  created_at: Date
}

const toUser = (row: UserRow): User => ({
  id: row.id,
  username: row.username,
  role: row.role,
  createdAt: row.created_at,
})

export function createUsersRepository(pool: Pool) {
  /** A new account, always with the role `user`: no request can create an admin. */
  async function create(username: string, passwordHash: string): Promise<User> {
    try {
      const { rows } = await pool.query<UserRow>(
        'INSERT INTO users (username, password_hash) VALUES ($1, $2) RETURNING id, username, role, created_at',
        [username, passwordHash],
      )
      return toUser(rows[0]!)
    } catch (err) {
      // The unique index decides, not a prior SELECT: two concurrent sign-ups cannot both win.
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) throw new UsernameTakenError(err)
      throw err
    }
  }

  async function findByUsername(username: string): Promise<UserCredentials | null> {
    const { rows } = await pool.query<UserRow & { password_hash: string }>(
      'SELECT id, username, role, created_at, password_hash FROM users WHERE lower(username) = lower($1)',
      [username],
    )
    const row = rows[0]
    return row ? { ...toUser(row), passwordHash: row.password_hash } : null
  }

  /** The account as it is now: the role of a token's user is read here, never trusted from the token. */
  async function findById(id: string): Promise<User | null> {
    const { rows } = await pool.query<UserRow>(
      'SELECT id, username, role, created_at FROM users WHERE id = $1',
      [id],
    )
    return rows[0] ? toUser(rows[0]) : null
  }

  /**
   * The configured first admin: created with `passwordHash` if missing, otherwise promoted with
   * its password left as it is. One statement, so replicas starting together agree.
   */
  async function ensureAdmin(username: string, passwordHash: string): Promise<User & { created: boolean }> {
    const { rows } = await pool.query<UserRow & { created: boolean }>(
      `INSERT INTO users (username, password_hash, role) VALUES ($1, $2, 'admin')
       ON CONFLICT ((lower(username))) DO UPDATE SET role = 'admin'
       RETURNING id, username, role, created_at, (xmax = 0) AS created`,
      [username, passwordHash],
    )
    const row = rows[0]!
    return { ...toUser(row), created: row.created }
  }

  /** Makes an existing user an admin; null when no user has that name. */
  async function promote(username: string): Promise<User | null> {
    const { rows } = await pool.query<UserRow>(
      `UPDATE users SET role = 'admin' WHERE lower(username) = lower($1)
       RETURNING id, username, role, created_at`,
      [username],
    )
    return rows[0] ? toUser(rows[0]) : null
  }

  return { create, findByUsername, findById, ensureAdmin, promote }
}

export type UsersRepository = ReturnType<typeof createUsersRepository>
