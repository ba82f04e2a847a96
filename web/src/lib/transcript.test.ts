import { describe, expect, it } from 'vitest'
import { LiveTranscript, activeSegment, activeWord, speakerLabel } from './transcript'

describe('LiveTranscript', () => {
  it('shows a partial as provisional and replaces it with later partials, then the final', () => {
    const t = new LiveTranscript()
    t.apply({ type: 'partial', seq: 2, role: 'caller', utterance: 0, start: 1.2, end: 2, stable: '', text: '我在黄' })
    expect(t.lines).toHaveLength(1)
    expect(t.lines[0]).toMatchObject({ final: false, text: '我在黄' })
    t.apply({ type: 'partial', seq: 3, role: 'caller', utterance: 0, start: 1.2, end: 3, stable: '我在', text: '我在黄岛' })
    expect(t.lines).toHaveLength(1)
    expect(t.lines[0]).toMatchObject({ final: false, text: '我在黄岛', stable: '我在' })
    t.apply({ type: 'final', seq: 4, role: 'caller', utterance: 0, start: 1.2, end: 3.4, text: '我在黄岛上班。' })
    expect(t.lines).toEqual([expect.objectContaining({ final: true, text: '我在黄岛上班。', end: 3.4 })])
    expect(t.text()).toBe('我在黄岛上班。')
  })

  it('ignores a partial that comes after its final, and events replayed after a reconnect', () => {
    const t = new LiveTranscript()
    t.apply({ type: 'final', seq: 5, role: 'agent', utterance: 1, start: 0, end: 1, text: '您好，12351。' })
    expect(t.apply({ type: 'partial', seq: 6, role: 'agent', utterance: 1, start: 0, end: 1, text: '您好' })).toBe(false)
    expect(t.apply({ type: 'final', seq: 5, role: 'agent', utterance: 1, start: 0, end: 1, text: '重复' })).toBe(false)
    expect(t.lines.map((l) => l.text)).toEqual(['您好，12351。'])
  })

  it('keeps both parties in time order, each utterance its own line', () => {
    const t = new LiveTranscript()
    t.apply({ type: 'final', role: 'caller', utterance: 0, start: 4, end: 6, text: '工资没发。' })
    t.apply({ type: 'final', role: 'agent', utterance: 0, start: 0, end: 2, text: '您好。' })
    t.apply({ type: 'partial', role: 'caller', utterance: 1, start: 7, end: 8, text: '三个月' })
    expect(t.lines.map((l) => [l.role, l.text, l.final])).toEqual([
      ['agent', '您好。', true], ['caller', '工资没发。', true], ['caller', '三个月', false],
    ])
    expect(t.text('caller')).toBe('工资没发。')
    expect(t.apply({ type: 'call_ended', seq: 99 })).toBe(false)
  })
})

describe('activeSegment', () => {
  const segs = [{ start: 0, end: 2 }, { start: 2.5, end: 5 }, { start: 4, end: 8 }, { start: 10, end: 12 }]
  it('finds the segment being heard', () => {
    expect(activeSegment(segs, 0)).toBe(0)
    expect(activeSegment(segs, 1.99)).toBe(0)
    expect(activeSegment(segs, 3)).toBe(1)
    expect(activeSegment(segs, 11)).toBe(3)
  })
  it('prefers the later-starting one when parties overlap, and finds an earlier long one still playing', () => {
    expect(activeSegment(segs, 4.5)).toBe(2)
    expect(activeSegment([{ start: 0, end: 20 }, { start: 3, end: 4 }], 10)).toBe(0)
  })
  it('is -1 between segments, before the first and after the last', () => {
    expect(activeSegment(segs, 2.2)).toBe(-1)
    expect(activeSegment(segs, 9)).toBe(-1)
    expect(activeSegment(segs, -1)).toBe(-1)
    expect(activeSegment(segs, 12)).toBe(-1)
    expect(activeSegment([], 1)).toBe(-1)
  })
})

describe('activeWord', () => {
  const words: [number, number, string][] = [[3.65, 3.79, '我们'], [3.79, 3.99, '是'], [4.15, 4.51, '青岛'], [4.51, 4.87, '联创。']]
  it('finds the word being played, its start included and its end not', () => {
    expect(activeWord(words, 3.65)).toBe(0)
    expect(activeWord(words, 3.78)).toBe(0)
    expect(activeWord(words, 3.79)).toBe(1)
    expect(activeWord(words, 4.6)).toBe(3)
  })
  it('keeps the last word lit through a short gap until the next starts', () => {
    expect(activeWord(words, 4.05)).toBe(1)
  })
  it('is -1 before the first word, once the last has ended, and without words', () => {
    expect(activeWord(words, 3.5)).toBe(-1)
    expect(activeWord(words, 4.87)).toBe(-1)
    expect(activeWord(words, -1)).toBe(-1)
    expect(activeWord([], 4)).toBe(-1)
  })
  it('lights the later of two words that start together (a word clean-up added takes no time)', () => {
    expect(activeWord([[1, 1, '，'], [1, 1.4, '好']], 1)).toBe(1)
  })
})

describe('speakerLabel', () => {
  it('names parties in Chinese', () => {
    expect(speakerLabel('caller')).toBe('来电人')
    expect(speakerLabel('agent')).toBe('接线员')
    expect(speakerLabel('S2')).toBe('发言人2')
  })
})
