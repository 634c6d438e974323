// Keyset paging has no "previous cursor": the pager keeps the cursor of every page it walked
// through, so Previous is the one before the current page's.
export function createCursorPager() {
  let cursors: (string | undefined)[] = [undefined]
  let next: string | null = null
  return {
    get page(): number {
      return cursors.length
    },
    get cursor(): string | undefined {
      return cursors.at(-1)
    },
    get hasNext(): boolean {
      return next !== null
    },
    get hasPrevious(): boolean {
      return cursors.length > 1
    },
    /** The answer for the current page arrived, with its nextCursor. */
    loaded(nextCursor: string | null): void {
      next = nextCursor
    },
    forward(): void {
      if (next === null) return
      cursors.push(next)
      next = null
    },
    back(): void {
      if (cursors.length > 1) cursors.pop()
      next = null
    },
    reset(): void {
      cursors = [undefined]
      next = null
    },
  }
}
