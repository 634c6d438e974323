// The webhooks view: the user's endpoints, a form that adds one, and per row: send a test, see
// deliveries, enable or disable, rotate the secret, delete. A secret is in one answer only
// (creation, rotation): the secret box shows it until dismissed or sign-out, and nothing else
// keeps it.
import { type ApiClient, ApiError } from './api-client.js'
import { createDeliveriesPanel } from './deliveries-panel.js'
import { actionsCell, busy, byId, cell, count, formatTime, rowButton, say, showProblem } from './dom.js'
import { type Webhook, webhookBodyFromForm, webhookState } from './webhook-format.js'

interface WebhooksPage {
  items: Webhook[]
  total: number
}

export function createWebhooksView(api: ApiClient) {
  const body = byId<HTMLTableElement>('webhooks-table').tBodies[0]!
  const listError = byId('webhooks-error')
  const status = byId('webhooks-status')
  const total = byId('webhooks-total')
  const form = byId<HTMLFormElement>('webhook-form')
  const formError = byId('webhook-form-error')
  const secretBox = byId('secret-box')
  const secretTitle = byId('secret-title')
  const secretFor = byId('secret-for')
  const secretValue = byId<HTMLTextAreaElement>('secret-value')
  const secretNote = byId('secret-note')
  const copyStatus = byId('secret-copy-status')
  const deliveries = createDeliveriesPanel(api, { onClosed: () => byId('webhooks-title').focus() })

  function showSecret(webhook: Pick<Webhook, 'url'>, secret: string, note: string): void {
    secretFor.textContent = webhook.url
    secretValue.value = secret
    secretNote.textContent = note
    say(copyStatus, null)
    secretBox.hidden = false
    secretTitle.focus()
  }

  function hideSecret(): void {
    secretValue.value = ''
    secretFor.textContent = ''
    secretBox.hidden = true
  }

  async function load(message?: string): Promise<void> {
    try {
      const page = await api.get<WebhooksPage>('/webhooks', { limit: 200 })
      total.textContent = count(page.total, 'endpoint')
      body.replaceChildren(...page.items.map(row))
      deliveries.follow(page.items)
      showProblem(listError, null)
      if (message) say(status, message)
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) showProblem(listError, err)
    }
  }

  function row(webhook: Webhook): HTMLTableRowElement {
    const tr = document.createElement('tr')
    tr.dataset.webhookId = webhook.id
    const target = document.createElement('th')
    target.scope = 'row'
    const url = document.createElement('span')
    url.className = 'url'
    url.textContent = webhook.url
    target.append(url)
    if (webhook.description) {
      const description = document.createElement('span')
      description.className = 'muted block'
      description.textContent = webhook.description
      target.append(description)
    }
    const state = webhookState(webhook)
    const stateCell = cell('td', state.label, `state-${state.tone}`)
    if (!webhook.enabled && webhook.disabledAt) stateCell.title = `Since ${formatTime(webhook.disabledAt)}`
    const label = webhook.description || webhook.url
    const test = rowButton('Send test', `Send a test event to ${label}`)
    test.disabled = !webhook.enabled
    test.addEventListener('click', () => void sendTest(webhook, tr))
    const history = rowButton('Deliveries', `Deliveries to ${label}`)
    history.addEventListener('click', () => deliveries.open(webhook))
    const toggle = rowButton(
      webhook.enabled ? 'Disable' : 'Re-enable',
      `${webhook.enabled ? 'Disable' : 'Re-enable'} ${label}`,
    )
    toggle.addEventListener('click', () => void setEnabled(webhook, !webhook.enabled, tr))
    const rotate = rowButton('Rotate secret', `Rotate the secret of ${label}`)
    rotate.addEventListener('click', () => void rotateSecret(webhook, tr))
    const remove = rowButton('Delete', `Delete ${label}`, 'danger')
    remove.addEventListener('click', () => void destroy(webhook, tr))
    tr.append(target, stateCell, actionsCell(test, history, toggle, rotate, remove))
    return tr
  }

  async function act(tr: HTMLElement, work: () => Promise<void>): Promise<void> {
    busy(tr, true)
    try {
      await work()
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) showProblem(listError, err)
      if (err instanceof ApiError && (err.status === 404 || err.status === 409)) await load()
      else busy(tr, false)
    }
  }

  const sendTest = (webhook: Webhook, tr: HTMLElement) =>
    act(tr, async () => {
      await api.post(`/webhooks/${webhook.id}/test`)
      showProblem(listError, null)
      say(status, `Test event queued for ${webhook.url}.`)
      busy(tr, false)
      deliveries.open(webhook)
    })

  const setEnabled = (webhook: Webhook, enabled: boolean, tr: HTMLElement) =>
    act(tr, async () => {
      await api.patch(`/webhooks/${webhook.id}`, { enabled })
      await load(`${webhook.url} ${enabled ? 're-enabled: pending deliveries go out now' : 'disabled'}.`)
    })

  const rotateSecret = (webhook: Webhook, tr: HTMLElement) =>
    act(tr, async () => {
      if (!window.confirm(`Rotate the secret of ${webhook.url}? The new one is shown once.`)) {
        busy(tr, false)
        return
      }
      const rotated = await api.post<{ secret: string; previousSecretExpiresAt: string }>(
        `/webhooks/${webhook.id}/rotate-secret`,
      )
      await load()
      showSecret(
        webhook,
        rotated.secret,
        `The previous secret keeps signing too until ${formatTime(rotated.previousSecretExpiresAt)}.`,
      )
    })

  const destroy = (webhook: Webhook, tr: HTMLElement) =>
    act(tr, async () => {
      if (!window.confirm(`Delete ${webhook.url} and its delivery log?`)) {
        busy(tr, false)
        return
      }
      await api.delete(`/webhooks/${webhook.id}`)
      await load(`${webhook.url} deleted.`)
      byId('webhooks-title').focus()
    })

  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const data = new FormData(form)
    const result = webhookBodyFromForm({
      url: String(data.get('url') ?? ''),
      description: String(data.get('description') ?? ''),
    })
    if (!result.ok) {
      showProblem(formError, result.problems)
      return
    }
    busy(form, true)
    try {
      const created = await api.post<Webhook & { secret: string }>('/webhooks', result.body)
      form.reset()
      showProblem(formError, null)
      await load(`${created.url} added.`)
      showSecret(created, created.secret, 'Deliveries are signed with it from now on.')
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) showProblem(formError, err)
    } finally {
      busy(form, false)
    }
  })

  byId('secret-copy').addEventListener('click', async () => {
    secretValue.select()
    try {
      await navigator.clipboard.writeText(secretValue.value)
      say(copyStatus, 'Copied to the clipboard.')
    } catch {
      say(copyStatus, 'The browser did not allow copying: the secret is selected, copy it with Ctrl+C.')
    }
  })
  secretValue.addEventListener('focus', () => secretValue.select())
  byId('secret-done').addEventListener('click', () => {
    hideSecret()
    byId<HTMLInputElement>('webhook-url').focus()
  })

  return {
    load,
    /** Entering the view: the list, and the deliveries shown before, read again. */
    enter(): void {
      void load()
      deliveries.resume()
    },
    /** Leaving the view: stop following deliveries. */
    leave(): void {
      deliveries.pause()
    },
    reset(): void {
      hideSecret()
      form.reset()
      body.replaceChildren()
      total.textContent = count(0, 'endpoint')
      say(status, null)
      showProblem(listError, null)
      showProblem(formError, null)
      deliveries.close(false)
    },
  }
}
