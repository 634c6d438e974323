// The rules view: the rules the user sees (GET /rules), one form that creates or edits, and per
// row the actions the user may take. Every change names the version it was made from
// (If-Match), so an edit based on a stale copy answers 412 and the list is read again.
import { type ApiClient, ApiError } from './api-client.js'
import { actionsCell, busy, byId, cell, count, rowButton, say, showProblem } from './dom.js'
import {
  createBodyFromForm,
  describeMatch,
  formFromRule,
  type Rule,
  type RuleFormFields,
  type RuleScope,
  ruleAccess,
  updateBodyFromForm,
} from './rule-form.js'
import { createWatchlistPanel } from './watchlist-panel.js'

interface RulesPage {
  items: Rule[]
  total: number
}

export function createRulesView(api: ApiClient) {
  const body = byId<HTMLTableElement>('rules-table').tBodies[0]!
  const listError = byId('rules-error')
  const status = byId('rules-status')
  const total = byId('rules-total')
  const form = byId<HTMLFormElement>('rule-form')
  const formTitle = byId('rule-form-title')
  const formError = byId('rule-form-error')
  const submit = byId<HTMLButtonElement>('rule-submit')
  const cancel = byId<HTMLButtonElement>('rule-cancel')
  const watchlistBox = byId<HTMLInputElement>('rule-watchlist')
  const watchlist = createWatchlistPanel(api, {
    onChanged: (message) => void load(message),
    onClosed: () => byId('rules-title').focus(),
  })
  let rules: Rule[] = []
  let isAdmin = false
  let me = ''
  /** The rule being edited, as it was read: its version goes in If-Match. */
  let editing: Rule | null = null

  function fields(): RuleFormFields {
    const data = new FormData(form)
    const text = (name: string) => String(data.get(name) ?? '')
    return {
      name: text('name'),
      scope: (text('scope') || 'private') as RuleScope,
      enabled: data.get('enabled') !== null,
      watchlist: data.get('watchlist') !== null,
      makes: text('makes'),
      categories: text('categories'),
      models: text('models'),
      yearMin: text('yearMin'),
      yearMax: text('yearMax'),
    }
  }

  function fill(values: RuleFormFields): void {
    const input = (name: string) => form.elements.namedItem(name) as HTMLInputElement
    input('name').value = values.name
    input('scope').value = values.scope
    input('enabled').checked = values.enabled
    input('watchlist').checked = values.watchlist
    input('makes').value = values.makes
    input('categories').value = values.categories
    input('models').value = values.models
    input('yearMin').value = values.yearMin
    input('yearMax').value = values.yearMax
  }

  function startCreate(): void {
    editing = null
    form.reset()
    formTitle.textContent = 'New rule'
    submit.textContent = 'Create rule'
    cancel.hidden = true
    watchlistBox.disabled = false
    showProblem(formError, null)
  }

  function startEdit(rule: Rule): void {
    editing = rule
    fill(formFromRule(rule))
    formTitle.textContent = `Edit “${rule.name}”`
    submit.textContent = 'Save changes'
    cancel.hidden = false
    // Set at creation for good: the API has no way to change it.
    watchlistBox.disabled = true
    showProblem(formError, null)
    byId<HTMLInputElement>('rule-name').focus()
  }

  async function load(message?: string): Promise<void> {
    try {
      const [page, user] = await Promise.all([
        api.get<RulesPage>('/rules', { limit: 200 }),
        api.get<{ id: string; role: string }>('/users/me'),
      ])
      rules = page.items
      isAdmin = user.role === 'admin'
      me = user.id
      render(page)
      watchlist.follow(rules)
      showProblem(listError, null)
      if (message) say(status, message)
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) showProblem(listError, err)
    }
  }

  function render(page: RulesPage): void {
    total.textContent =
      page.total > page.items.length
        ? `${page.items.length} of ${count(page.total, 'rule')}`
        : count(page.total, 'rule')
    body.replaceChildren(...rules.map(row))
  }

  function row(rule: Rule): HTMLTableRowElement {
    const tr = document.createElement('tr')
    tr.dataset.ruleId = rule.id
    const scope = cell('td', rule.scope)
    const enabled = cell('td', rule.enabled ? 'on' : 'off', rule.enabled ? 'state-on' : 'state-off')
    const actions = actionsCell()
    const buttons = actions.firstElementChild as HTMLElement
    const access = ruleAccess(rule, isAdmin)
    if (access === 'edit') {
      const edit = rowButton('Edit', `Edit ${rule.name}`)
      edit.addEventListener('click', () => startEdit(rule))
      const toggle = rowButton(
        rule.enabled ? 'Disable' : 'Enable',
        `${rule.enabled ? 'Disable' : 'Enable'} ${rule.name}`,
      )
      toggle.addEventListener('click', () => void change(rule, { enabled: !rule.enabled }, tr))
      const remove = rowButton('Delete', `Delete ${rule.name}`, 'danger')
      remove.addEventListener('click', () => void destroy(rule, tr))
      buttons.append(edit, toggle)
      if (rule.watchlist) {
        const entries = rowButton('Watch list', `Watch list of ${rule.name}`)
        entries.addEventListener('click', () => watchlist.open(rule))
        buttons.append(entries)
      }
      buttons.append(remove)
    } else {
      const note = document.createElement('span')
      note.className = 'muted'
      note.textContent =
        access === 'builtin'
          ? 'Read-only: set by SUSPICIOUS_VEHICLE'
          : 'Read-only: shared rules are changed by admins'
      buttons.append(note)
    }
    tr.append(nameCell(rule), cell('td', describeMatch(rule), 'matches'), scope, enabled, actions)
    return tr
  }

  /** The name, and under it whose rule it is and its version (the one If-Match will name). */
  function nameCell(rule: Rule): HTMLTableCellElement {
    const th = cell('th', '')
    const name = document.createElement('span')
    name.textContent = rule.name
    const about = document.createElement('span')
    about.className = 'muted block'
    const whose =
      rule.owner === null ? 'built-in' : rule.owner.id === me ? 'yours' : `by ${rule.owner.username}`
    about.textContent = `${whose} · version ${rule.version}`
    th.append(name, about)
    return th
  }

  async function change(rule: Rule, changes: { enabled: boolean }, tr: HTMLElement): Promise<void> {
    busy(tr, true)
    try {
      await api.patch(`/rules/${rule.id}`, changes, rule.version)
      await load(`“${rule.name}” ${changes.enabled ? 'enabled' : 'disabled'}.`)
    } catch (err) {
      await failed(err, listError)
      busy(tr, false)
    }
  }

  async function destroy(rule: Rule, tr: HTMLElement): Promise<void> {
    if (!window.confirm(`Delete the rule “${rule.name}”? Its alerts stop at once.`)) return
    busy(tr, true)
    try {
      await api.delete(`/rules/${rule.id}`, rule.version)
      if (editing?.id === rule.id) startCreate()
      await load(`“${rule.name}” deleted.`)
      byId('rules-title').focus()
    } catch (err) {
      await failed(err, listError)
      busy(tr, false)
    }
  }

  /** Shows the problem; a stale version (412) or a rule gone (404) also re-reads the list. */
  async function failed(err: unknown, where: HTMLElement): Promise<void> {
    if (err instanceof ApiError && err.status === 401) return
    if (err instanceof ApiError && (err.status === 412 || err.status === 404)) {
      await load()
      showProblem(
        where,
        new ApiError(
          err.status,
          err.message,
          err.code,
          err.status === 412
            ? 'Someone changed this rule meanwhile: the list now shows its current version. Try again.'
            : `${err.summary} The list has been read again.`,
        ),
      )
      return
    }
    showProblem(where, err)
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const current = editing
    const result = current ? updateBodyFromForm(fields(), current) : createBodyFromForm(fields())
    if (!result.ok) {
      showProblem(formError, result.problems)
      return
    }
    if (current && Object.keys(result.body).length === 0) {
      showProblem(formError, 'Nothing changed.')
      return
    }
    busy(form, true)
    try {
      const saved = current
        ? await api.patch<Rule>(`/rules/${current.id}`, result.body, current.version)
        : await api.post<Rule>('/rules', result.body)
      startCreate()
      await load(`“${saved.name}” ${current ? 'saved' : 'created'} (version ${saved.version}).`)
      if (!current && saved.watchlist) watchlist.open(saved)
    } catch (err) {
      await failed(err, formError)
    } finally {
      busy(form, false)
      cancel.hidden = editing === null
    }
  })

  cancel.addEventListener('click', () => {
    startCreate()
    byId('rules-title').focus()
  })

  return {
    load,
    reset(): void {
      rules = []
      body.replaceChildren()
      total.textContent = count(0, 'rule')
      say(status, null)
      showProblem(listError, null)
      startCreate()
      watchlist.close(false)
    },
  }
}
