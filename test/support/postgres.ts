import pg from 'pg'

const INSUFFICIENT_PRIVILEGE = '42501'

/**
 * Drops a test database. `WITH (FORCE)` ends the test's own sessions, but not an autovacuum worker
 * that a large insert has just started (it runs as the superuser): wait for it a little instead of
 * failing the test.
 */
export async function dropPostgresDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
        return
      } catch (err) {
        if ((err as { code?: string }).code !== INSUFFICIENT_PRIVILEGE || attempt >= 20) throw err
        await new Promise((resolve) => setTimeout(resolve, 500))
      }
    }
  } finally {
    await client.end()
  }
}
