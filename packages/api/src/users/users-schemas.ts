import { z } from 'zod'
import { MAX_PASSWORD_BYTES } from './password-hasher.js'
import { USER_ROLES } from './users-repository.js'

export const usernameSchema = z
  .string({ error: 'username is required and must be a string' })
  .min(3, 'username must be at least 3 characters')
  .max(64, 'username must be at most 64 characters')
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
    'username may contain only letters, digits, ".", "_" and "-", and must start with a letter or digit',
  )
  .describe('3–64 characters: letters, digits, ".", "_", "-"; unique case-insensitively')

export const passwordSchema = z
  .string({ error: 'password is required and must be a string' })
  .min(8, 'password must be at least 8 characters')
  // Characters, for the document: every character is at least one byte.
  .max(
    MAX_PASSWORD_BYTES,
    `password must be at most ${MAX_PASSWORD_BYTES} bytes in UTF-8 (bcrypt ignores anything longer)`,
  )
  .refine(
    (password) => Buffer.byteLength(password, 'utf8') <= MAX_PASSWORD_BYTES,
    `password must be at most ${MAX_PASSWORD_BYTES} bytes in UTF-8 (bcrypt ignores anything longer)`,
  )
  .describe(`At least 8 characters and at most ${MAX_PASSWORD_BYTES} bytes (UTF-8)`)

// Not strict: unknown fields are dropped, so a `role` in a sign-up is ignored (sign-up creates users).
export const createUserBodySchema = z
  .object({ username: usernameSchema, password: passwordSchema })
  .meta({ examples: [{ username: 'alice', password: 'correct horse battery staple' }] })

export const userSchema = z
  .object({
    id: z.uuid(),
    username: z.string(),
    role: z
      .enum(USER_ROLES)
      .describe('`admin` may create and edit shared rules; sign-up always creates `user`'),
    createdAt: z.date(),
  })
  .meta({
    id: 'User',
    examples: [
      {
        id: '0b7d2c44-5a7e-4d59-9a53-1f3e0b8f8c11',
        username: 'alice',
        role: 'user',
        createdAt: '2026-11-23T20:15:00.000Z',
      },
    ],
  })
