import { describe, expect, it } from 'vitest'
import { createCursorPager } from '../src/cursor-pager.js'

describe('cursor pager', () => {
  it('walks forward with each nextCursor and back through the cursors it kept', () => {
    const pager = createCursorPager()
    expect([pager.page, pager.cursor, pager.hasPrevious, pager.hasNext]).toEqual([1, undefined, false, false])
    pager.loaded('c2')
    expect(pager.hasNext).toBe(true)
    pager.forward()
    expect([pager.page, pager.cursor, pager.hasPrevious]).toEqual([2, 'c2', true])
    pager.loaded('c3')
    pager.forward()
    pager.loaded(null)
    expect([pager.page, pager.cursor, pager.hasNext]).toEqual([3, 'c3', false])
    pager.forward()
    expect(pager.page).toBe(3)
    pager.back()
    expect([pager.page, pager.cursor]).toEqual([2, 'c2'])
    pager.back()
    pager.back()
    expect([pager.page, pager.cursor, pager.hasPrevious]).toEqual([1, undefined, false])
    pager.loaded('c2')
    pager.forward()
    pager.reset()
    expect([pager.page, pager.cursor, pager.hasNext]).toEqual([1, undefined, false])
  })
})
