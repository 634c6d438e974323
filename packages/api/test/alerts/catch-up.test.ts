// Where a stream starts (pure): Last-Event-ID, since=, or live only.
import { describe, expect, it } from 'vitest'
import { streamStart } from '../../src/alerts/catch-up.js'
import { encodeResumeToken } from '../../src/alerts/resume-token.js'

describe('streamStart', () => {
  it('resumes after a Last-Event-ID, which wins over since', () => {
    const token = encodeResumeToken([3, 0, 7])
    expect(streamStart(token, undefined)).toEqual({ resume: [3, 0, 7] })
    expect(streamStart(token, '1700000000000')).toEqual({ resume: [3, 0, 7] })
  })

  it('starts at a time with since, 1970 and earlier meaning the oldest alert kept', () => {
    expect(streamStart(undefined, '1700000000000')).toEqual({ since: 1_700_000_000_000 })
    expect(streamStart(undefined, '1969-12-31T00:00:00Z')).toEqual({ since: 0 })
  })

  it('is live only with neither', () => {
    expect(streamStart(undefined, undefined)).toEqual({})
    expect(streamStart('', '')).toEqual({})
  })

  it('rejects an id this stream never sent with a 400 code', () => {
    expect(() => streamStart('nope!', undefined)).toThrow(
      expect.objectContaining({ code: 'INVALID_LAST_EVENT_ID' }),
    )
  })
})
