// What the alert feed remembers, with no DOM: the alerts shown (newest first, bounded), the ids
// already seen, and the resume token of the last one. The API already sends each alert once per
// stream; the id set is the client's own guard for the moments around a reconnect.

/** A rule an alert matched, as the API shows it to this user: shared, or one of their own. */
export interface AlertRule {
  id: string
  version: number
  name: string
  scope: 'private' | 'shared'
}

export interface Alert {
  id: string
  detectedAt: string
  year: number
  make: string
  model: string
  category: string
  reason: string
  /** Every rule it matched that this user may see; absent from an API older than rules. */
  rules?: AlertRule[]
}

/** What the feed says matched: each rule by name and scope, or the reason when no rule is named. */
export function matchedRules(alert: Alert): { name: string; scope: AlertRule['scope'] | null }[] {
  if (alert.rules && alert.rules.length > 0) {
    return alert.rules.map((rule) => ({ name: rule.name, scope: rule.scope }))
  }
  return [{ name: alert.reason, scope: null }]
}

export interface FeedFilters {
  make: string
  category: string
}

export function createFeedState(limit = 200) {
  let alerts: Alert[] = []
  let seen = new Set<string>()
  let lastEventId: string | null = null
  return {
    /** Adds an alert on top; false when its id was already seen (a duplicate, ignored). */
    add(alert: Alert, eventId: string | null): boolean {
      if (eventId) lastEventId = eventId
      if (seen.has(alert.id)) return false
      seen.add(alert.id)
      alerts.unshift(alert)
      if (alerts.length > limit) {
        for (const dropped of alerts.splice(limit)) seen.delete(dropped.id)
      }
      return true
    },
    /** A `reset` event moves the position without an alert. */
    moveTo(eventId: string): void {
      lastEventId = eventId
    },
    clear(): void {
      alerts = []
      seen = new Set()
      lastEventId = null
    },
    get alerts(): readonly Alert[] {
      return alerts
    },
    get lastEventId(): string | null {
      return lastEventId
    },
  }
}

export type FeedState = ReturnType<typeof createFeedState>

/**
 * The EventSource URL. The token goes in the query because EventSource cannot send headers;
 * `lastEventId` resumes a stream this page opens itself (EventSource sends the Last-Event-ID
 * header only on its own reconnects, and the API lets that header win over the query).
 */
export function alertsUrl(
  token: string,
  filters: FeedFilters,
  position: { lastEventId?: string | null; since?: string },
): string {
  const params = new URLSearchParams({ access_token: token })
  if (filters.make.trim()) params.set('make', filters.make.trim())
  if (filters.category.trim()) params.set('category', filters.category.trim())
  if (position.lastEventId) params.set('lastEventId', position.lastEventId)
  else if (position.since) params.set('since', position.since)
  return `/alerts?${params}`
}

/** Backoff for reconnects this page makes itself (after the API refused a stream, e.g. 503 while starting). */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(10_000, 500 * 2 ** Math.min(attempt, 5))
}
