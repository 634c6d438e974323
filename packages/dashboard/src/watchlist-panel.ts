// A watch list's entries: import replaces them all from a CSV file (PUT, text/csv, If-Match),
// export saves what the API holds (GET, CSV) as a file. The CSV is never parsed here: the API
// says which rows are wrong, by line, and the panel lists them.
import { type ApiClient, ApiError } from './api-client.js'
import { busy, byId, say, showProblem } from './dom.js'
import { saveText } from './download.js'
import { type Rule, watchlistFileName } from './rule-form.js'

export interface WatchlistPanelOptions {
  /** After an import: the list is read again, with this message. */
  onChanged(message: string): void
  onClosed(): void
}

export function createWatchlistPanel(api: ApiClient, options: WatchlistPanelOptions) {
  const panel = byId('watchlist-panel')
  const title = byId('watchlist-title')
  const name = byId('watchlist-name')
  const count = byId('watchlist-count')
  const error = byId('watchlist-error')
  const status = byId('watchlist-status')
  const file = byId<HTMLInputElement>('watchlist-file')
  let rule: Rule | null = null

  function render(current: Rule): void {
    name.textContent = current.name
    count.textContent = String(current.entryCount)
  }

  function close(focus = true): void {
    rule = null
    panel.hidden = true
    file.value = ''
    showProblem(error, null)
    say(status, null)
    if (focus) options.onClosed()
  }

  byId('watchlist-import').addEventListener('click', async () => {
    const current = rule
    const chosen = file.files?.[0]
    if (!current) return
    if (!chosen) {
      showProblem(error, 'Choose a CSV file first.')
      file.focus()
      return
    }
    busy(panel, true)
    try {
      const text = await chosen.text()
      const saved = await api.put<Rule>(
        `/rules/${current.id}/entries`,
        { text, type: 'text/csv; charset=utf-8' },
        current.version,
      )
      rule = saved
      render(saved)
      file.value = ''
      showProblem(error, null)
      const entries = `${saved.entryCount} ${saved.entryCount === 1 ? 'entry' : 'entries'}`
      say(status, `Imported ${entries} from ${chosen.name}.`)
      options.onChanged(`“${saved.name}” now holds ${entries} (version ${saved.version}).`)
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) showProblem(error, err)
    } finally {
      busy(panel, false)
    }
  })

  byId('watchlist-export').addEventListener('click', async () => {
    const current = rule
    if (!current) return
    busy(panel, true)
    try {
      const csv = await api.getText(`/rules/${current.id}/entries`)
      saveText(watchlistFileName(current), csv, 'text/csv;charset=utf-8')
      showProblem(error, null)
      say(status, `Saved ${watchlistFileName(current)}.`)
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) showProblem(error, err)
    } finally {
      busy(panel, false)
    }
  })

  byId('watchlist-close').addEventListener('click', () => close())

  return {
    open(target: Rule): void {
      rule = target
      render(target)
      file.value = ''
      showProblem(error, null)
      say(status, null)
      panel.hidden = false
      title.focus()
    },
    /** The list was read again: keep the version current (for If-Match), or close if the rule is gone. */
    follow(rules: readonly Rule[]): void {
      if (!rule) return
      const fresh = rules.find((candidate) => candidate.id === rule?.id)
      if (fresh) {
        rule = fresh
        render(fresh)
      } else close(false)
    },
    close,
  }
}
