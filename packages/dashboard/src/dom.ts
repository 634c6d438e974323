import { ApiError } from './api-client.js'

/** The element with this id; the page's markup is static, so a missing one is a programming error. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id)
  if (!element) throw new Error(`#${id} is missing from index.html`)
  return element as T
}

export function cell(tag: 'td' | 'th', text: string, className?: string): HTMLTableCellElement {
  const element = document.createElement(tag)
  element.textContent = text
  if (className) element.className = className
  if (tag === 'th') element.scope = 'row'
  return element
}

export function show(element: HTMLElement, text: string | null): void {
  element.textContent = text ?? ''
  element.hidden = text === null
}

/**
 * Text for a `role="status"` region, which stays in the page (never `hidden`): a live region that
 * appears together with its text is not announced by every screen reader.
 */
export function say(element: HTMLElement, text: string | null): void {
  element.textContent = text ?? ''
}

const timeFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
})

export function formatTime(iso: string): string {
  const date = new Date(iso)
  return Number.isNaN(date.getTime()) ? iso : timeFormat.format(date)
}

/**
 * An API problem next to what caused it: the detail, then each invalid field or row as a list.
 * `null` clears it. The element is a `role="alert"` region, so the message is read out.
 */
export function showProblem(element: HTMLElement, problem: unknown): void {
  if (problem === null) {
    element.replaceChildren()
    element.hidden = true
    return
  }
  const summary = document.createElement('p')
  const items: string[] = []
  if (problem instanceof ApiError) {
    summary.textContent = problem.summary
    items.push(...problem.details)
  } else if (Array.isArray(problem)) {
    summary.textContent = 'Check the form:'
    items.push(...problem.map(String))
  } else {
    summary.textContent = problem instanceof Error ? problem.message : String(problem)
  }
  const nodes: HTMLElement[] = [summary]
  if (items.length > 0) {
    const list = document.createElement('ul')
    for (const text of items) {
      const item = document.createElement('li')
      item.textContent = text
      list.append(item)
    }
    nodes.push(list)
  }
  element.replaceChildren(...nodes)
  element.hidden = false
}

/** `1 rule`, `3 rules`. */
export function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`
}

/** The cell that holds a row's buttons; they wrap inside it, the cell stays a table cell. */
export function actionsCell(...buttons: HTMLElement[]): HTMLTableCellElement {
  const td = document.createElement('td')
  const group = document.createElement('div')
  group.className = 'row-actions'
  group.append(...buttons)
  td.append(group)
  return td
}

/** A button for a table row; its accessible name says which row, its text stays short. */
export function rowButton(text: string, label: string, className = 'secondary'): HTMLButtonElement {
  const button = document.createElement('button')
  button.type = 'button'
  button.textContent = text
  button.className = className
  button.setAttribute('aria-label', label)
  return button
}

export function busy(container: HTMLElement, on: boolean): void {
  for (const button of container.querySelectorAll('button')) button.disabled = on
}
