import { describe, expect, it } from 'vitest'
import { ApiError, errorFromResponse } from '../api/http'
import type { Segment } from '../api/types'
import { checkText, composing, conflictOf, lineKey, replaceSegment, shownWords, uncertain } from './corrections'

describe('uncertain words', () => {
  it('flags words under 0.5 probability, never older words without one', () => {
    expect(uncertain([1, 2, '联创', 0.31])).toBe(true)
    expect(uncertain([1, 2, '联创', 0.5])).toBe(false)
    expect(uncertain([1, 2, '联创'])).toBe(false)
    expect(shownWords([[0, 1, '我们', 0.9], [1, 2, '连川', 0.2], [2, 3, '公司']]).map((w) => w.uncertain))
      .toEqual([false, true, false])
    expect(shownWords(undefined)).toEqual([])
  })
})

describe('checkText', () => {
  it('says in Chinese why a text cannot be saved', () => {
    expect(checkText('  ')).toBe('校对内容不能为空')
    expect(checkText('联'.repeat(2001))).toContain('不能超过2000个字')
    expect(checkText('一行\n两行')).toContain('换行')
    expect(checkText('，。')).toBe('校对内容须包含文字')
    expect(checkText(' 青岛联创电子有限公司。 ')).toBeNull()
  })
})

describe('conflictOf', () => {
  const current: Segment = { id: 7, idx: 1, start: 5, end: 9, speaker: 'caller', text: '青岛联创', version: 2,
    edited_by: 'zhang' }

  it('reads who changed the segment and how it stands from a 409', () => {
    const e = errorFromResponse(409, { code: 'version_conflict', detail: '此段已被 zhang 修改', current })
    expect(conflictOf(e)).toEqual({ current, by: 'zhang', message: '此段已被 zhang 修改' })
  })

  it('is null for other errors', () => {
    expect(conflictOf(errorFromResponse(409, { code: 'invalid_transition', detail: '不能' }))).toBeNull()
    expect(conflictOf(new ApiError(422, 'invalid', '校对内容不能为空'))).toBeNull()
    expect(conflictOf(new Error('x'))).toBeNull()
  })
})

describe('replaceSegment and lineKey', () => {
  it('puts the corrected segment in place of the one with its id', () => {
    const segs: Segment[] = [{ id: 1, start: 0, end: 1, speaker: 'agent', text: '您好' },
      { id: 2, start: 1, end: 2, speaker: 'caller', text: '连川' }]
    const out = replaceSegment(segs, { id: 2, start: 1, end: 2, speaker: 'caller', text: '联创', version: 1 })
    expect(out.map((s) => s.text)).toEqual(['您好', '联创'])
    expect(segs[1].text).toBe('连川')
  })

  it('edits with e or Enter where lines are editable, else plays from the line', () => {
    expect(lineKey('e', true)).toBe('edit')
    expect(lineKey('Enter', true)).toBe('edit')
    expect(lineKey('Enter', false)).toBe('seek')
    expect(lineKey(' ', true)).toBe('seek')
    expect(lineKey('e', false)).toBeNull()
  })

  it('leaves Enter and Esc to an input method that is still composing', () => {
    expect(composing({ isComposing: true, keyCode: 13 })).toBe(true)
    expect(composing({ isComposing: false, keyCode: 229 })).toBe(true)
    expect(composing({ isComposing: false, keyCode: 13 })).toBe(false)
  })
})
