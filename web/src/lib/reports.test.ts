import { describe, expect, it } from 'vitest'
import { formatBytes } from './download'
import { periodError, periodLabel, reportKindLabel, shortSha, summaryRows } from './reports'

describe('report periods', () => {
  it('are written in Chinese', () => {
    expect(periodLabel('2026-03')).toBe('2026年3月')
    expect(periodLabel('2026-11-05')).toBe('2026年11月5日')
    expect(periodLabel('其他')).toBe('其他')
    expect(reportKindLabel('monthly')).toBe('月报')
    expect(reportKindLabel('daily')).toBe('日报')
  })
  it('must fit the kind and have begun (Beijing today)', () => {
    expect(periodError('monthly', '2026-03', '2026-03-10')).toBeNull()
    expect(periodError('daily', '2026-03-10', '2026-03-10')).toBeNull()
    expect(periodError('monthly', '2026-04', '2026-03-10')).toBe('2026年4月尚未开始')
    expect(periodError('daily', '2026-03-11', '2026-03-10')).toBe('2026年3月11日尚未开始')
    expect(periodError('monthly', '2026-03-01', '2026-03-10')).toBe('月份格式应为 YYYY-MM')
    expect(periodError('daily', '2026-03', '2026-03-10')).toBe('日期格式应为 YYYY-MM-DD')
    expect(periodError('daily', '', '2026-03-10')).toBe('请选择日期')
  })
})

describe('the archive', () => {
  it('shortens digests and sizes for the eye', () => {
    expect(shortSha('3f2a9c01d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b7be4')).toBe('3f2a9c01…7be4')
    expect(shortSha(null)).toBe('—')
    expect(formatBytes(812)).toBe('812 B')
    expect(formatBytes(356 * 1024)).toBe('356 KB')
    expect(formatBytes(1.25 * 1024 * 1024)).toBe('1.3 MB')
    expect(formatBytes(undefined)).toBe('—')
  })
  it('shows a monthly report\'s headline figures', () => {
    const rows = summaryRows('monthly', { cases: 120, mom: 0.125, yoy: null, workers: 300, amount: 1234567,
      group_cases: 2, closed: 100, overdue: 3, on_time_rate: 0.97, warnings_raised: 5, warnings_closed: 4,
      amount_recovered: 600000, hot_terms: ['工资', '加班费'] })
    expect(rows).toEqual([
      { label: '受理工单', value: '120 件' }, { label: '环比', value: '+12.5%' }, { label: '同比', value: '—' },
      { label: '涉及职工', value: '300 人' }, { label: '涉及金额', value: '1,234,567 元' },
      { label: '群体性案件', value: '2 件' }, { label: '办结', value: '100 件' }, { label: '逾期', value: '3 件' },
      { label: '按期办结率', value: '97.0%' }, { label: '预警发出 / 办结', value: '5 / 4' },
      { label: '追回金额', value: '600,000 元' }, { label: '热点词', value: '工资、加班费' }])
    expect(summaryRows('monthly', { cases: 10, mom: -0.03 })[1]).toEqual({ label: '环比', value: '-3.0%' })
  })
  it('shows a daily report\'s headline figures', () => {
    expect(summaryRows('daily', { new_warnings: 3, new_by_grade: { 红: 1, 橙: 0, 黄: 2, 蓝: 0 }, upgraded: 1,
      escalated: 0, colour_changes: 2, worse: 1, open_warnings: 7 })).toEqual([
      { label: '新增预警', value: '3 条' }, { label: '按等级', value: '红1、黄2' }, { label: '升级', value: '1 条' },
      { label: '上报', value: '0 条' }, { label: '企业变色', value: '2 家（转差 1 家）' }, { label: '未办结预警', value: '7 条' }])
    expect(summaryRows('daily', null)).toEqual([])
  })
})
