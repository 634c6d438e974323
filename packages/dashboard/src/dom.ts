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
