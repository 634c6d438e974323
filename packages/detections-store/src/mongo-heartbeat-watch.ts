/** The MongoClient events the watch follows (a MongoClient fits). */
export interface HeartbeatEvents {
  on(
    event: 'serverHeartbeatStarted',
    listener: (event: { connectionId: string; awaited: boolean }) => void,
  ): unknown
  on(event: 'serverHeartbeatSucceeded', listener: (event: { connectionId: string }) => void): unknown
  on(event: 'serverHeartbeatFailed', listener: (event: { connectionId: string }) => void): unknown
  on(event: 'serverClosed', listener: (event: { address: string }) => void): unknown
}

export interface HeartbeatWatch {
  /** A heartbeat has been outstanding longer than any heartbeat can last: the monitor has stopped. */
  stalled(): boolean
}

/**
 * Tells when a MongoClient's server monitor has stopped checking its server.
 *
 * The mongodb driver (6.x, 7.x) can leave a heartbeat pending forever: when the server cuts
 * every connection at once (a restart), the close of one pooled connection makes the monitor
 * check at once, and it may write its `hello` on its own socket that Node has already destroyed
 * (the peer's FIN) but not yet reported closed. Such a write neither drains nor fails, the
 * driver's close handling does not reach a write that waits for `drain`, and a monitor with a
 * check in progress ignores every later request to check. The server then stays `Unknown` and
 * every operation fails server selection, long after the server is back.
 *
 * Every heartbeat ends one way or the other within a bound set by the client's timeouts, so one
 * outstanding for longer means the monitor will never check again: a polled `hello` on the
 * monitor's connection times out after connectTimeoutMS; a new monitoring connection connects,
 * then runs `hello` and up to two authentication steps, each bounded by connectTimeoutMS; a
 * streamed (awaited) `hello` may wait heartbeatFrequencyMS on top of its connectTimeoutMS.
 */
export function watchHeartbeats(
  client: HeartbeatEvents,
  {
    connectTimeoutMS,
    heartbeatFrequencyMS,
    now = Date.now,
  }: { connectTimeoutMS: number; heartbeatFrequencyMS: number; now?: () => number },
): HeartbeatWatch {
  const polledBoundMs = 4 * connectTimeoutMS
  const awaitedBoundMs = heartbeatFrequencyMS + connectTimeoutMS
  /** Server address → when its outstanding heartbeat is overdue. */
  const outstanding = new Map<string, number>()
  client.on('serverHeartbeatStarted', (event) =>
    outstanding.set(event.connectionId, now() + (event.awaited ? awaitedBoundMs : polledBoundMs)),
  )
  client.on('serverHeartbeatSucceeded', (event) => outstanding.delete(event.connectionId))
  client.on('serverHeartbeatFailed', (event) => outstanding.delete(event.connectionId))
  client.on('serverClosed', (event) => outstanding.delete(event.address))
  return {
    stalled: () => {
      const at = now()
      for (const overdue of outstanding.values()) if (at > overdue) return true
      return false
    },
  }
}
