// GET /detections with the API's filters and cursor paging (newest first).
import { type ApiClient, ApiError } from './api-client.js'
import { createCursorPager } from './cursor-pager.js'
import { byId, cell, formatTime, show } from './dom.js'

interface Detection {
  id: string
  year: number
  make: string
  model: string
  category: string
  detectedAt: string
  suspicious: boolean
}

interface Page {
  items: Detection[]
  total: number
  nextCursor: string | null
}

export const PAGE_SIZE = 20

/** datetime-local has no zone: it is the viewer's local time, sent as an ISO instant. */
function instant(value: FormDataEntryValue | null): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined
  const date = new Date(value)
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString()
}

export function createDetectionsTable(api: ApiClient) {
  const form = byId<HTMLFormElement>('det-filters')
  const body = byId<HTMLTableElement>('det-table').tBodies[0]!
  const total = byId('det-total')
  const pageLabel = byId('det-page')
  const error = byId('det-error')
  const previous = byId<HTMLButtonElement>('det-prev')
  const next = byId<HTMLButtonElement>('det-next')
  const pager = createCursorPager()
  let filters: Record<string, string | undefined> = {}

  async function load(): Promise<void> {
    previous.disabled = true
    next.disabled = true
    try {
      const page = await api.get<Page>('/detections', { ...filters, limit: PAGE_SIZE, cursor: pager.cursor })
      pager.loaded(page.nextCursor)
      show(error, null)
      total.textContent = String(page.total)
      body.replaceChildren(...page.items.map(row))
    } catch (err) {
      if (err instanceof ApiError && err.status !== 401) show(error, err.message)
    } finally {
      pageLabel.textContent = String(pager.page)
      previous.disabled = !pager.hasPrevious
      next.disabled = !pager.hasNext
    }
  }

  function row(detection: Detection): HTMLTableRowElement {
    const tr = document.createElement('tr')
    tr.dataset.detectionId = detection.id
    if (detection.suspicious) tr.className = 'suspicious'
    const time = document.createElement('time')
    time.dateTime = detection.detectedAt
    time.textContent = formatTime(detection.detectedAt)
    const timeCell = cell('td', '')
    timeCell.append(time)
    tr.append(
      timeCell,
      cell('td', detection.make),
      cell('td', detection.model),
      cell('td', detection.category),
      cell('td', String(detection.year), 'num'),
      cell('td', detection.suspicious ? 'yes' : 'no'),
    )
    return tr
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const data = new FormData(form)
    const text = (name: string) => String(data.get(name) ?? '').trim() || undefined
    filters = {
      make: text('make'),
      model: text('model'),
      category: text('category'),
      year: text('year'),
      from: instant(data.get('from')),
      to: instant(data.get('to')),
    }
    pager.reset()
    void load()
  })
  next.addEventListener('click', () => {
    pager.forward()
    void load()
  })
  previous.addEventListener('click', () => {
    pager.back()
    void load()
  })

  return {
    load,
    reset(): void {
      pager.reset()
      form.reset()
      filters = {}
      body.replaceChildren()
    },
  }
}
