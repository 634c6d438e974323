// Counts by make/model/category/year from GET /stats, as a table whose rows carry their bars: the
// numbers a screen reader (and the browser test) reads are the ones drawn.
import type { ApiClient } from './api-client.js'
import { byId, cell } from './dom.js'

interface Stats {
  group_by: string
  total: number
  items: { value: string; count: number }[]
}

/** Past this many rows the long tail (hundreds of models) is summed into one "others" row. */
export const SHOWN_ROWS = 15

export function createStatsPanel(api: ApiClient) {
  const select = byId<HTMLSelectElement>('stats-group')
  const dimension = byId('stats-dimension')
  const total = byId('stats-total')
  const body = byId<HTMLTableElement>('stats-table').tBodies[0]!
  let inFlight = false

  async function refresh(): Promise<void> {
    if (inFlight) return
    inFlight = true
    try {
      const stats = await api.get<Stats>('/stats', { group_by: select.value })
      render(stats)
    } catch {
      // Kept as drawn; the next tick tries again (a 401 already signed out).
    } finally {
      inFlight = false
    }
  }

  function render(stats: Stats): void {
    dimension.textContent = stats.group_by
    total.textContent = String(stats.total)
    const shown = stats.items.slice(0, SHOWN_ROWS)
    const rest = stats.items.slice(SHOWN_ROWS)
    const max = Math.max(1, ...shown.map((item) => item.count))
    const rows = shown.map((item) => row(item.value, item.count, max))
    if (rest.length > 0) {
      // The tail's sum can dwarf every shown bar: it gets a number, not a bar.
      const others = row(
        `${rest.length} others`,
        rest.reduce((sum, item) => sum + item.count, 0),
        0,
      )
      others.classList.add('others')
      rows.push(others)
    }
    body.replaceChildren(...rows)
  }

  function row(value: string, count: number, max: number): HTMLTableRowElement {
    const tr = document.createElement('tr')
    const bar = document.createElement('span')
    bar.className = 'bar'
    // CSSOM, not a style attribute: allowed by the page's `style-src 'self'`.
    bar.style.width = max > 0 ? `${Math.min(100, (count / max) * 100).toFixed(1)}%` : '0'
    bar.hidden = max === 0
    const barCell = cell('td', '', 'bar-cell')
    barCell.setAttribute('aria-hidden', 'true')
    barCell.append(bar)
    tr.append(cell('th', value), cell('td', String(count), 'num'), barCell)
    return tr
  }

  select.addEventListener('change', () => void refresh())
  return {
    refresh,
    reset(): void {
      body.replaceChildren()
      total.textContent = '0'
    },
  }
}
