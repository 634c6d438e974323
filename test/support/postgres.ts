import pg from 'pg'

const INSUFFICIENT_PRIVILEGE = '42501'

/**
 * Drops a test database. `pg.Pool#end()` resolves once it has asked its clients to close, not once
 * they have: a session still closing when `WITH (FORCE)` ends it sends its client a FATAL error that
 * nothing listens for any more, an uncaught exception in the test. So the sessions get a moment to
 * close by themselves first; FORCE then ends whatever a test left open. FORCE cannot end an
 * autovacuum worker that a large insert has just started (it runs as the superuser): wait for it a
 * little instead of failing the test.
 */
export async function dropPostgresDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    for (let waited = 0; waited < 2_000; waited += 50) {
      const { rows } = await client.query<{ sessions: number }>(
        "SELECT count(*)::int AS sessions FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'",
        [name],
      )
      if (rows[0]?.sessions === 0) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
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
