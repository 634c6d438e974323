// One endpoint's recent deliveries (GET /webhooks/{id}/deliveries), newest first. While any is
// pending the panel reads them again every few seconds, so a test event is seen going out.
import { type ApiClient, ApiError } from './api-client.js'
import { byId, cell, formatTime, show, showProblem } from './dom.js'
import { type Delivery, lastAnswer, type Webhook } from './webhook-format.js'

const SHOWN = 20
const FOLLOW_MS = 1_000

export function createDeliveriesPanel(api: ApiClient, options: { onClosed(): void }) {
  const panel = byId('deliveries-panel')
  const title = byId('deliveries-title')
  const target = byId('deliveries-for')
  const reason = byId('deliveries-disabled')
  const summary = byId('deliveries-summary')
  const error = byId('deliveries-error')
  const body = byId<HTMLTableElement>('deliveries-table').tBodies[0]!
  let webhook: Webhook | null = null
  let timer: ReturnType<typeof setTimeout> | undefined

  function describe(current: Webhook): void {
    target.textContent = current.description || current.url
    show(
      reason,
      current.enabled
        ? null
        : `Disabled${current.disabledReason ? `: ${current.disabledReason}` : ''}. Re-enable it to resume deliveries.`,
    )
  }

  async function refresh(): Promise<void> {
    clearTimeout(timer)
    const current = webhook
    if (!current) return
    try {
      const page = await api.get<{ items: Delivery[]; total: number }>(`/webhooks/${current.id}/deliveries`, {
        limit: SHOWN,
      })
      if (webhook?.id !== current.id) return
      body.replaceChildren(...page.items.map(row))
      summary.textContent =
        page.total === 0
          ? 'No deliveries yet.'
          : `${page.total} ${page.total === 1 ? 'delivery' : 'deliveries'}${page.total > SHOWN ? `, the latest ${SHOWN} shown` : ''}.`
      showProblem(error, null)
      if (page.items.some((delivery) => delivery.state === 'pending')) timer = setTimeout(refresh, FOLLOW_MS)
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) showProblem(error, err)
    }
  }

  function row(delivery: Delivery): HTMLTableRowElement {
    const tr = document.createElement('tr')
    tr.dataset.deliveryId = delivery.id
    tr.dataset.state = delivery.state
    tr.append(
      cell('td', formatTime(delivery.createdAt)),
      cell('td', delivery.kind === 'ping' ? 'test' : `alert ${delivery.alertId.slice(0, 12)}`),
      cell('td', delivery.state, `delivery-${delivery.state}`),
      cell('td', String(delivery.attempts), 'num'),
      cell('td', lastAnswer(delivery)),
      cell(
        'td',
        delivery.state === 'pending' && delivery.nextAttemptAt ? formatTime(delivery.nextAttemptAt) : '—',
      ),
    )
    return tr
  }

  function close(focus = true): void {
    clearTimeout(timer)
    webhook = null
    body.replaceChildren()
    panel.hidden = true
    if (focus) options.onClosed()
  }

  byId('deliveries-refresh').addEventListener('click', () => void refresh())
  byId('deliveries-close').addEventListener('click', () => close())

  return {
    open(current: Webhook): void {
      const other = webhook?.id !== current.id
      webhook = current
      describe(current)
      if (other) {
        body.replaceChildren()
        summary.textContent = ''
      }
      panel.hidden = false
      title.focus()
      void refresh()
    },
    /** The endpoints were read again: keep the shown one's state current, or close if it is gone. */
    follow(webhooks: readonly Webhook[]): void {
      if (!webhook) return
      const fresh = webhooks.find((candidate) => candidate.id === webhook?.id)
      if (fresh) {
        webhook = fresh
        describe(fresh)
      } else close(false)
    },
    pause(): void {
      clearTimeout(timer)
    },
    resume(): void {
      if (webhook) void refresh()
    },
    close,
  }
}
