import bcrypt from 'bcrypt'

/** bcrypt only reads the first 72 bytes: longer passwords would be silently truncated, so they are refused. */
export const MAX_PASSWORD_BYTES = 72

export interface PasswordHasher {
  hash(password: string): Promise<string>
  verify(password: string, hash: string): Promise<boolean>
  /** Spends the same time as a real `verify`, for logins naming a user that does not exist. */
  verifyAgainstDummy(password: string): Promise<false>
}

export async function createPasswordHasher(cost: number): Promise<PasswordHasher> {
  // Same cost as real hashes, so an unknown user takes as long as a wrong password.
  const dummy = await bcrypt.hash('intellisite-dummy-password', cost)
  return {
    hash: (password) => bcrypt.hash(password, cost),
    verify: (password, hash) => bcrypt.compare(password, hash),
    verifyAgainstDummy: async (password) => {
      await bcrypt.compare(password, dummy)
      return false
    },
  }
}
