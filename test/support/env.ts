/** A connection variable the global setup exports to every test worker. */
export function requireEnv(name: string): string {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set: the global setup should have started the services`)
  return value
}
