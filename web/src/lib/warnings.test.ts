import { describe, expect, it } from 'vitest'
import { can } from './permissions'
import {
  GRADES, byGrade, caseCount, formatAlpha, describeDetails, evidenceRows, figureRows, formToRule, formatBeijing, formatBeijingDate,
  gradeRank, gradeStyle, nextMoves, ruleToForm, snoozeBody, thresholdText, transitionBody,
} from './warnings'
import type { MoveForm } from './warnings'

describe('warning permissions', () => {
  it('mirror the API matrix: managers read and handle, admins also edit rules, agents and mediators none', () => {
    for (const p of ['warning:read', 'warning:handle', 'enterprise:rate'] as const) expect(can('manager', p)).toBe(true)
    expect(can('manager', 'warning:admin')).toBe(false)
    for (const p of ['warning:read', 'warning:handle', 'warning:admin', 'enterprise:rate'] as const) {
      expect(can('admin', p)).toBe(true)
      expect(can('agent', p)).toBe(false)
      expect(can('mediator', p)).toBe(false)
    }
  })
})

describe('grades', () => {
  it('rank 蓝 < 黄 < 橙 < 红 and list the highest first', () => {
    expect(GRADES).toEqual(['红', '橙', '黄', '蓝'])
    expect(['蓝', '黄', '橙', '红'].map(gradeRank)).toEqual([0, 1, 2, 3])
    expect(gradeRank('绿')).toBe(-1)
    const sorted = byGrade([{ grade: '黄', id: 1 }, { grade: '红', id: 2 }, { grade: '蓝', id: 3 }, { grade: '红', id: 4 }],
      (a, b) => b.id - a.id)
    expect(sorted.map((w) => w.id)).toEqual([4, 2, 1, 3])
  })
  it('colour each grade, dark text on yellow, grey for anything unknown', () => {
    expect(gradeStyle('红').background).toBe('#d9001b')
    expect(gradeStyle('黄').color).toBe('#3a2e00')
    expect(gradeStyle('紫').background).toBe('#909399')
  })
})

describe('nextMoves', () => {
  it('offers only the moves the server allows, labelled for staff', () => {
    expect(nextMoves('待签收', ['已签收'])).toEqual([{ to: '已签收', kind: 'sign', label: '签收', type: 'primary' }])
    expect(nextMoves('已签收', ['办结', '已核实']).map((m) => m.label)).toEqual(['核实', '办结'])
    expect(nextMoves('已核实', ['处置中', '办结']).map((m) => m.label)).toEqual(['联动处置', '办结'])
    expect(nextMoves('处置中', ['处置中', '办结']).map((m) => m.label)).toEqual(['追加处置', '办结'])
    expect(nextMoves('办结', [])).toEqual([])
  })
})

describe('transitionBody', () => {
  const form = (f: Partial<MoveForm> = {}): MoveForm =>
    ({ verdict: '', action: '', note: '', amount_recovered: undefined, workers_covered: undefined, ...f })
  const [sign] = nextMoves('待签收', ['已签收'])
  const [verify] = nextMoves('已签收', ['已核实'])
  const [act, close] = nextMoves('已核实', ['处置中', '办结'])
  it('asks for what each move needs', () => {
    expect(transitionBody(sign, form())).toEqual({ body: { to: '已签收' } })
    expect(transitionBody(verify, form())).toEqual({ error: '请选择核实结论' })
    expect(transitionBody(verify, form({ verdict: '属实', note: ' 电话核实 ' })))
      .toEqual({ body: { to: '已核实', verdict: '属实', note: '电话核实' } })
    expect(transitionBody(act, form())).toEqual({ error: '请选择处置方式' })
    expect(transitionBody(act, form({ action: '约谈企业', verdict: '误报' }))).toEqual({ body: { to: '处置中', action: '约谈企业' } })
    expect(transitionBody(close, form())).toEqual({ error: '请填写办结情况' })
    expect(transitionBody(close, form({ note: '已补发', amount_recovered: 120000, workers_covered: null })))
      .toEqual({ body: { to: '办结', note: '已补发', amount_recovered: 120000 } })
    expect(transitionBody(close, form({ note: 'x', workers_covered: 2.5 }))).toEqual({ error: '惠及职工应为非负整数' })
  })
})

describe('snoozeBody', () => {
  const now = new Date('2025-03-04T08:00:00Z')
  it('needs a reason and a day after today (end of day, Beijing) or a number of cases', () => {
    expect(snoozeBody({ mode: 'until', until: '2025-03-10', more_cases: 1, reason: '  ' }, now)).toEqual({ error: '请填写暂缓理由' })
    expect(snoozeBody({ mode: 'until', until: '2025-03-10', more_cases: 1, reason: '企业已承诺月底前发放' }, now))
      .toEqual({ body: { until: '2025-03-10T23:59:59+08:00', reason: '企业已承诺月底前发放' } })
    expect(snoozeBody({ mode: 'until', until: '2025-03-03', more_cases: 1, reason: 'r' }, now)).toEqual({ error: '暂缓日期应晚于今天' })
    expect(snoozeBody({ mode: 'until', until: '', more_cases: 1, reason: 'r' }, now)).toEqual({ error: '请选择暂缓至哪一天' })
    expect(snoozeBody({ mode: 'cases', until: '', more_cases: 3, reason: 'r' }, now)).toEqual({ body: { more_cases: 3, reason: 'r' } })
    expect(snoozeBody({ mode: 'cases', until: '', more_cases: 0, reason: 'r' }, now))
      .toEqual({ error: '请填写再增加多少件工单时恢复' })
  })
})

describe('Beijing time', () => {
  it('shows UTC+8 whatever the zone, API times without a zone being UTC', () => {
    expect(formatBeijing('2025-03-04T16:05:09Z')).toBe('2025-03-05 00:05')
    expect(formatBeijing('2025-03-04T16:05:09', true)).toBe('2025-03-05 00:05:09')
    expect(formatBeijing('2025-03-04T10:00:00+08:00')).toBe('2025-03-04 10:00')
    expect(formatBeijing(null)).toBe('—')
    expect(formatBeijingDate('2025-03-04')).toBe('2025-03-04')
    expect(formatBeijingDate('2025-03-04T20:00:00Z')).toBe('2025-03-05')
  })
})

describe('figures, evidence and the timeline in words', () => {
  it('lists the figures it has', () => {
    expect(figureRows({ cases: 4, callers: 3, workers: 23, amount: 186000, window_start: '2025-03-01',
      window_end: '2025-03-07T12:00:00Z', p_value: 0.0012 })).toEqual([
      { label: '工单', value: '4 件' }, { label: '来电人', value: '3 人' }, { label: '涉及职工', value: '23 人' },
      { label: '涉及金额', value: '186,000 元' }, { label: '统计时段', value: '2025-03-01 至 2025-03-07' },
      { label: '突增显著性', value: 'p = 0.0012' }])
    expect(figureRows({ cases: 3, group_cases: 1, because: ['阈值:橙', '群体性', '新规则'] }).slice(1)).toEqual([
      { label: '群体性案件', value: '1 起' }, { label: '触发依据', value: '达到橙色阈值、含群体性案件、新规则' }])
    expect(figureRows(null)).toEqual([])
    expect(caseCount({ case_ids: [1, 2, 3], figures: { cases: 9 } })).toBe(3)
    expect(caseCount({ case_ids: [], figures: { cases: 9 } })).toBe(9)
  })
  it('orders evidence by the second it was said, with the speaker and sentence', () => {
    const rows = evidenceRows({
      workers: { value: 30, start: 14.6, end: 19.5, speaker: 'caller', text: '三十个人', confidence: 0.9 },
      enterprise: { value: '青岛联创人力资源有限公司', start: 3.5, speaker: 'caller', text: '我们是被青岛联创…' },
      district: { value: '黄岛区', status: '待核实' },
      summary: { value: null, text: '来电人反映…' },
    })
    expect(rows.map((r) => r.field)).toEqual(['enterprise', 'workers', 'district'])
    expect(rows[0]).toMatchObject({ label: '涉及企业', speaker: '来电人', start: 3.5, end: null })
    expect(rows[1]).toMatchObject({ value: '30', confidence: 0.9 })
    expect(rows[2]).toMatchObject({ unverified: true, start: null, text: '' })
  })
  it('describes a timeline event', () => {
    expect(describeDetails({ from: '已签收', to: '已核实', note: '已电话核实', verdict: '属实', internal: 1 }, 'warning.verified'))
      .toBe('已签收 → 已核实；说明：已电话核实；结论：属实')
    expect(describeDetails({ from: '黄', to: '红', rule: '企业短期聚集' }, 'warning.upgraded')).toBe('黄色 → 红色；规则：企业短期聚集')
    expect(describeDetails({ cases: [3, 4] }, 'warning.attached')).toBe('工单：2 件')
    expect(describeDetails({ level: 2 }, 'warning.escalated')).toBe('上报层级：系统管理员')
    expect(describeDetails({})).toBe('')
  })
})

describe('the rule form', () => {
  const rule = {
    name: '企业聚集', group_by: 'enterprise' as const, categories: ['欠薪'], window_days: 7, min_cases: 3,
    grades: { 红: { workers: 30 }, 黄: { cases: 3, callers: 3 } }, burst_alpha: null, burst_grade: '黄' as const,
    baseline_days: 180, floor_per_day: 0, group_case_red: true, repeat_red: true, repeat_days: 90, active: true,
  }
  it('round-trips, leaving out grades without thresholds', () => {
    const form = ruleToForm(rule)
    expect(form.grades.橙).toEqual({ cases: null, callers: null, workers: null, amount: null })
    expect(form.burst).toBe(false)
    expect(formToRule(form)).toEqual({ rule })
    form.burst = true
    form.grades.橙.amount = 100000
    expect(formToRule(form)).toMatchObject({ rule: { burst_alpha: 0.00001, grades: { 橙: { amount: 100000 } } } })
    // a tiny significance level survives the round trip unrounded
    expect(ruleToForm({ ...rule, burst_alpha: 1e-6 }).burst_alpha).toBe('0.000001')
    expect(formToRule(ruleToForm({ ...rule, burst_alpha: 1e-6 }))).toMatchObject({ rule: { burst_alpha: 1e-6 } })
    form.burst_alpha = '0.5'
    expect(formToRule(form)).toEqual({ error: '突增检验显著性水平应为大于 0、小于 0.5 的小数，如 0.00001' })
  })
  it('refuses what the API would', () => {
    expect(formToRule({ ...ruleToForm(rule), name: ' ' })).toEqual({ error: '请填写规则名称' })
    const form = ruleToForm(rule)
    form.grades.红.cases = 0
    expect(formToRule(form)).toEqual({ error: '红色预警的“工单数”阈值应为正整数' })
    expect(formToRule({ ...ruleToForm(rule), window_days: 0 })).toEqual({ error: '统计窗口应为 1–365 天' })
  })
  it('writes significance levels in plain decimals', () => {
    expect(formatAlpha(1e-5)).toBe('0.00001')
    expect(formatAlpha(0.01)).toBe('0.01')
    expect(formatAlpha(null)).toBe('')
  })
  it('says a grade\'s thresholds in words', () => {
    expect(thresholdText({ cases: 5, amount: 100000 })).toBe('工单数 ≥ 5 件 或 涉及金额 ≥ 100,000 元')
    expect(thresholdText({})).toBe('—')
  })
})
