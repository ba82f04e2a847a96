// Transcript corrections: what the editor checks before saving, a 409's "someone else changed it", the
// corrected segment put back in place, the keys that start an edit, and words the decoder was unsure of.

import { ApiError } from '../api/http'
import type { Segment, TimedWord } from '../api/types'

export const MAX_SEGMENT_CHARS = 2000
export const UNCERTAIN_BELOW = 0.5
export const UNCERTAIN_TITLE = '识别不确定，建议复听'

/** Whether the decoder was unsure of a word ([start, end, text, probability]; older words have no probability). */
export function uncertain(word: readonly unknown[]): boolean {
  const p = word[3]
  return typeof p === 'number' && p < UNCERTAIN_BELOW
}

/** Why a corrected text cannot be saved (the server says the same), or null when it can. */
export function checkText(text: string): string | null {
  const t = text.trim()
  if (!t) return '校对内容不能为空'
  if (t.length > MAX_SEGMENT_CHARS) return `校对内容不能超过${MAX_SEGMENT_CHARS}个字`
  if (/[\n\r]/.test(t)) return '校对内容不能包含换行'
  if (!/[\p{L}\p{N}]/u.test(t)) return '校对内容须包含文字'
  return null
}

export interface Conflict {
  current: Segment
  by: string // who changed it (「此段已被 X 修改」)
  message: string
}

/** The segment as it now stands when a save was refused because someone else changed it first (409
 * ``version_conflict``); null for any other error. */
export function conflictOf(e: unknown): Conflict | null {
  if (!(e instanceof ApiError) || e.status !== 409 || e.code !== 'version_conflict') return null
  const body = e.body as { current?: Segment } | null
  const current = body?.current
  if (!current || typeof current.text !== 'string') return null
  return { current, by: current.edited_by || '其他人', message: e.message }
}

/** ``segments`` with the one of the same id (else idx) replaced by ``updated``. */
export function replaceSegment(segments: readonly Segment[], updated: Segment): Segment[] {
  return segments.map((s) => (updated.id !== undefined ? s.id === updated.id : s.idx === updated.idx) ? updated : s)
}

/** What a key pressed on a focused transcript line does: ``e`` (or Enter, when lines are editable) starts
 * editing it, Enter (not editable) or Space plays from it. */
export function lineKey(key: string, editable: boolean): 'edit' | 'seek' | null {
  if (editable && (key === 'e' || key === 'E' || key === 'Enter')) return 'edit'
  if (key === 'Enter' || key === ' ') return 'seek'
  return null
}

/** Whether a key press belongs to an input method still composing (pinyin: Enter picks a candidate, Esc drops
 * the composition): it must not save or cancel the edit. */
export function composing(event: Pick<KeyboardEvent, 'isComposing' | 'keyCode'>): boolean {
  return event.isComposing || event.keyCode === 229
}

/** Words to show: the segment's, uncertain ones flagged. */
export function shownWords(words: readonly TimedWord[] | undefined): { word: TimedWord; uncertain: boolean }[] {
  return (words ?? []).map((word) => ({ word, uncertain: uncertain(word) }))
}
