import { describe, expect, it } from 'vitest'
import type { HistoryEntry } from '../api/enterprises'
import { COLOURS, colourRank, colourShift, colourStyle, distributionRows, formatPoints, formatScore, historyReason } from './colours'

const entry = (e: Partial<HistoryEntry>): HistoryEntry => ({
  month: '2025-03', score: 80, colour: '蓝', ruleset_version: 1, computed_at: '2025-03-31T16:00:00Z', items: [],
  previous_colour: '绿', colour_changed: true, ruleset_changed: false, changes: [], explanation: '', ...e,
})

describe('colours', () => {
  it('go worst first, as the API ranks them', () => {
    expect(COLOURS).toEqual(['红', '橙', '黄', '蓝', '绿'])
    expect(colourRank('红')).toBe(0)
    expect(colourRank('绿')).toBe(4)
    expect(colourRank('紫')).toBe(-1)
    expect(colourStyle('绿').background).toBe('#2e7d32')
    expect(colourStyle(null).background).toBe('#909399')
  })
  it('show scores and points as staff read them', () => {
    expect(formatScore(100)).toBe('100')
    expect(formatScore(72.25)).toBe('72.3')
    expect(formatScore(undefined)).toBe('—')
    expect(formatPoints(-10)).toBe('-10')
    expect(formatPoints(2.5)).toBe('+2.5')
    expect(formatPoints(0, 'veto_open_red_warning')).toBe('一票否决')
  })
  it('count every colour, 0 where none, from by_colour or a bare map', () => {
    expect(distributionRows({ total: 3, by_colour: { 红: 1, 绿: 2 }, overridden: 0 })).toEqual([
      { colour: '红', count: 1 }, { colour: '橙', count: 0 }, { colour: '黄', count: 0 }, { colour: '蓝', count: 0 },
      { colour: '绿', count: 2 }])
    expect(distributionRows({ 黄: 4 })[2]).toEqual({ colour: '黄', count: 4 })
    expect(distributionRows(null).every((r) => r.count === 0)).toBe(true)
  })
})

describe('why a colour changed', () => {
  it('prefers the server\'s sentence', () => {
    expect(historyReason(entry({ explanation: ' 新增欠薪工单 2 件，扣 10 分 ' }))).toBe('新增欠薪工单 2 件，扣 10 分')
  })
  it('else lists the changed items, and says so for the first month', () => {
    expect(historyReason(entry({ previous_colour: null, colour_changed: false }))).toBe('首次评定')
    expect(historyReason(entry({ changes: [{ item: 'arrears', label: '欠薪', before: -5, after: -15,
      added_case_ids: [3, 4], removed_case_ids: [], added_warning_ids: [], removed_warning_ids: [] }],
    ruleset_changed: true, ruleset_version: 2 }))).toBe('欠薪（新增 2 件工单）：-5 → -15；评分规则更新为第 2 版')
    expect(historyReason(entry({ colour_changed: false }))).toBe('与上月相比无变化')
  })
  it('shows the shift only when the colour changed', () => {
    expect(colourShift(entry({}))).toBe('绿 → 蓝')
    expect(colourShift(entry({ colour_changed: false }))).toBe('')
  })
})
