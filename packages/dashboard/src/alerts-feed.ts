// The live alert feed over EventSource. The browser reconnects by itself after a dropped stream
// (sending Last-Event-ID); when the API refuses a stream (503 while it starts, 401 once the token
// expired), EventSource gives up, so this module reopens it with the position in the query, after
// checking whether the refusal was an expired token.
import type { ApiClient } from './api-client.js'
import { byId, formatTime, show } from './dom.js'
import {
  type Alert,
  alertsUrl,
  createFeedState,
  type FeedFilters,
  matchedRules,
  reconnectDelayMs,
} from './feed-state.js'

export type ConnectionState = 'live' | 'connecting' | 'reconnecting' | 'signed-out'

export interface AlertsFeedOptions {
  api: ApiClient
  token(): string | null
  onState(state: ConnectionState): void
  onExpired(message: string): void
  /** Each new alert, once (the time series bumps its current minute). */
  onAlert?(alert: Alert): void
}

/**
 * A screen reader hears a summary at most this often, not every alert: at a few alerts a second a
 * live list would talk without pause.
 */
const ANNOUNCE_EVERY_MS = 10_000

/** On first open, show what happened in the last few minutes rather than an empty list. */
const BACKFILL_MS = 10 * 60_000

export function createAlertsFeed(options: AlertsFeedOptions) {
  const list = byId<HTMLOListElement>('feed-list')
  const count = byId('feed-count')
  const notice = byId('feed-notice')
  const announcer = byId('feed-announcer')
  let unannounced: Alert[] = []
  let announceTimer: ReturnType<typeof setTimeout> | undefined
  const form = byId<HTMLFormElement>('feed-filters')
  const state = createFeedState()
  let filters: FeedFilters = { make: '', category: '' }
  let source: EventSource | null = null
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  let attempt = 0
  let running = false
  let duplicates = 0

  function render(alert: Alert): void {
    const item = document.createElement('li')
    item.className = 'alert'
    item.dataset.alertId = alert.id
    const title = document.createElement('strong')
    title.textContent = `${alert.make} ${alert.model}`
    const meta = document.createElement('span')
    meta.className = 'meta'
    meta.textContent = `${alert.category} · ${alert.year}`
    const time = document.createElement('time')
    time.dateTime = alert.detectedAt
    time.textContent = formatTime(alert.detectedAt)
    const rules = document.createElement('span')
    rules.className = 'rules'
    for (const rule of matchedRules(alert)) {
      const badge = document.createElement('span')
      badge.className = rule.scope === null ? 'rule' : `rule rule-${rule.scope}`
      badge.textContent = rule.name
      if (rule.scope !== null) badge.title = `${rule.scope === 'private' ? 'Your private' : 'Shared'} rule`
      rules.append(badge)
    }
    item.title = alert.reason
    item.append(title, meta, time, rules)
    list.prepend(item)
    while (list.children.length > state.alerts.length) list.lastElementChild?.remove()
    count.textContent = String(state.alerts.length)
    unannounced.push(alert)
    announceTimer ??= setTimeout(announce, ANNOUNCE_EVERY_MS)
  }

  function announce(): void {
    announceTimer = undefined
    const latest = unannounced.at(-1)
    if (latest) {
      const many = unannounced.length === 1 ? '1 new alert' : `${unannounced.length} new alerts`
      announcer.textContent = `${many}; latest ${latest.make} ${latest.model}, ${latest.category}`
    }
    unannounced = []
  }

  function open(): void {
    const token = options.token()
    if (!token || !running) return
    source?.close()
    const url = alertsUrl(token, filters, {
      lastEventId: state.lastEventId,
      since: new Date(Date.now() - BACKFILL_MS).toISOString(),
    })
    const current = new EventSource(url)
    source = current
    options.onState(attempt === 0 && state.lastEventId === null ? 'connecting' : 'reconnecting')
    current.addEventListener('open', () => {
      attempt = 0
      options.onState('live')
    })
    current.addEventListener('alert', (event) => {
      const message = event as MessageEvent<string>
      let alert: Alert
      try {
        alert = JSON.parse(message.data) as Alert
      } catch {
        return
      }
      if (state.add(alert, message.lastEventId || null)) {
        render(alert)
        options.onAlert?.(alert)
      } else {
        // Dropped here, but counted where tests and curious operators can see it: the API promises none.
        duplicates += 1
        list.dataset.duplicates = String(duplicates)
      }
    })
    current.addEventListener('reset', (event) => {
      const message = event as MessageEvent<string>
      if (message.lastEventId) state.moveTo(message.lastEventId)
      show(
        notice,
        'Some alerts were older than the server keeps: the feed restarted from the oldest one it has.',
      )
    })
    current.addEventListener('token-expired', () => {
      stop()
      options.onExpired('Your session has expired. Sign in again.')
    })
    current.addEventListener('error', () => {
      if (current !== source || !running) return
      if (current.readyState === EventSource.CONNECTING) {
        options.onState('reconnecting')
        return
      }
      // CLOSED: the API answered something other than a stream. An expired token shows as 401 on
      // any authenticated call; the client signs out there. Otherwise retry with backoff.
      current.close()
      options.onState('reconnecting')
      void options.api
        .get('/detections', { limit: 1 })
        .catch(() => undefined)
        .finally(() => {
          if (!running) return
          clearTimeout(retryTimer)
          retryTimer = setTimeout(open, reconnectDelayMs(attempt++))
        })
    })
  }

  function stop(): void {
    running = false
    clearTimeout(retryTimer)
    clearTimeout(announceTimer)
    announceTimer = undefined
    unannounced = []
    source?.close()
    source = null
    options.onState('signed-out')
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const data = new FormData(form)
    filters = { make: String(data.get('make') ?? ''), category: String(data.get('category') ?? '') }
    // Another filter is another stream: start it afresh rather than mixing two selections.
    state.clear()
    list.replaceChildren()
    count.textContent = '0'
    show(notice, null)
    attempt = 0
    open()
  })

  return {
    start(): void {
      running = true
      attempt = 0
      open()
    },
    stop,
    /** Forget everything shown (sign-out: the next user sees only their own session). */
    reset(): void {
      stop()
      state.clear()
      list.replaceChildren()
      count.textContent = '0'
      show(notice, null)
    },
  }
}
