import { describe, expect, it } from 'vitest'
import type { ClueRead } from '../api/clues'
import {
  LEDGERS, LEDGER_STATUSES, beijingMonth, beijingToday, clueCreateBody, clueMoveBody, clueMoves, clueToForm,
  clueUpdateBody, daysBetween, deadlineState, emptyClueForm, formatBeijingSeconds, importErrorLine, ledgerOf,
  ledgerQuery, parseCaseIds, periodShortcuts,
} from './clues'
import { can } from './permissions'

const NOW = new Date('2026-03-10T02:00:00Z') // 10:00 in Beijing

function clue(over: Partial<ClueRead> = {}): ClueRead {
  return {
    id: 7, number: 'XS-2026-000007', source: '舆情监测', category: '欠薪', title: '某公司拖欠工资', content: '网帖反映',
    received_at: '2026-03-01T01:30:00', enterprise: '青岛联创人力资源有限公司', enterprise_id: 3, district: '黄岛区',
    workers: 12, amount: 360000, promised_date: '2026-03-16', verify_due: '2026-03-06', status: '核实中', verdict: null,
    responsible: '王科长', responsible_unit: '权益保障部', amount_recovered: null, closed_at: null, overdue: false,
    verify_overdue: false, credit_code: null, verify_lead_days: 10, due_at: '2026-03-16T16:00:00',
    verify_due_at: '2026-03-06T16:00:00', last_note: '', verified_at: null, created_by: 'user:m', created_at: '',
    updated_at: '', cases: [{ id: 4, case_no: '12351-1', status: '受理', category: '欠薪' }], next_statuses: ['属实', '不属实'],
    ...over,
  }
}

describe('clue and ledger permissions', () => {
  it('mirror the API matrix: managers and admins read ledgers, edit clues and read reports; others none', () => {
    for (const role of ['manager', 'admin']) {
      for (const p of ['ledger:read', 'clue:edit', 'report:read', 'stats:read'] as const) expect(can(role, p)).toBe(true)
    }
    for (const role of ['agent', 'mediator']) {
      for (const p of ['ledger:read', 'clue:edit', 'report:read'] as const) expect(can(role, p)).toBe(false)
    }
  })
})

describe('Beijing days', () => {
  it('are the calendar in UTC+8 whatever the browser zone', () => {
    expect(beijingToday(new Date('2026-03-31T15:59:59Z'))).toBe('2026-03-31')
    expect(beijingToday(new Date('2026-03-31T16:00:00Z'))).toBe('2026-04-01')
    expect(beijingMonth(new Date('2026-12-31T16:30:00Z'))).toBe('2027-01')
    expect(daysBetween('2026-02-27', '2026-03-02')).toBe(3)
    expect(formatBeijingSeconds('2026-03-01T01:30:00')).toBe('2026-03-01 09:30:00')
    expect(formatBeijingSeconds('2026-03-01T09:30:05+08:00')).toBe('2026-03-01 09:30:05')
    expect(formatBeijingSeconds(null)).toBe('')
  })
  it('offer 本月, 上月 (across a year), 本季度, 本年', () => {
    const s = Object.fromEntries(periodShortcuts(new Date('2026-01-20T04:00:00Z')).map((x) => [x.text, x.value]))
    expect(s).toEqual({ 本月: ['2026-01-01', '2026-01-20'], 上月: ['2025-12-01', '2025-12-31'],
      本季度: ['2026-01-01', '2026-01-20'], 本年: ['2026-01-01', '2026-01-20'] })
    expect(periodShortcuts(new Date('2024-03-05T04:00:00Z'))[1].value).toEqual(['2024-02-01', '2024-02-29'])
  })
})

describe('ledgers', () => {
  it('are the three lists, with their period day', () => {
    expect(LEDGERS.map((l) => l.kind)).toEqual(['arrears-new', 'arrears-closed', 'opinion'])
    expect(ledgerOf('arrears-closed').periodLabel).toBe('办结日期')
    expect(ledgerOf('nonsense').kind).toBe('arrears-new')
    expect(LEDGER_STATUSES).toEqual(['核实中', '属实', '不属实', '转为工单', '结案', '受理', '转办', '办理', '回访', '办结'])
  })
  it('ask for one page, or for the whole (the XLSX) with the same filters', () => {
    const f = { period: ['2026-03-01', '2026-03-31'] as [string, string], district: '黄岛区', status: '' }
    expect(ledgerQuery(f, 3, 50)).toEqual({ period_start: '2026-03-01', period_end: '2026-03-31', district: '黄岛区',
      status: undefined, limit: 50, offset: 100 })
    expect(ledgerQuery({ period: null, district: '', status: '结案' })).toEqual({ period_start: undefined,
      period_end: undefined, district: undefined, status: '结案' })
  })
})

describe('deadlines counted back', () => {
  it('say how long is left or how late, in Beijing days', () => {
    expect(deadlineState(clue(), NOW)).toEqual({ label: '剩余 6 天', level: 'ok' })
    expect(deadlineState(clue({ promised_date: '2026-03-12' }), NOW)).toEqual({ label: '剩余 2 天', level: 'soon' })
    expect(deadlineState(clue({ promised_date: '2026-03-10' }), NOW)).toEqual({ label: '今日到期', level: 'soon' })
    expect(deadlineState(clue({ promised_date: '2026-03-07' }), NOW)).toEqual({ label: '逾期 3 天', level: 'overdue' })
    expect(deadlineState(clue({ status: '结案', overdue: false }), NOW).label).toBe('按期结案')
    expect(deadlineState(clue({ status: '结案', overdue: true }), NOW).level).toBe('overdue')
  })
})

describe('the workflow', () => {
  it('offers the server\'s next statuses, labelled, asking for what each needs', () => {
    expect(clueMoves(['属实', '不属实']).map((m) => [m.to, m.label, m.note])).toEqual([
      ['属实', '核实属实', 'optional'], ['不属实', '核实不属实', 'required']])
    const [toCase, close] = clueMoves(['转为工单', '结案'])
    expect([toCase.cases, toCase.amount, close.cases, close.amount]).toEqual([true, false, false, true])
    expect(clueMoves(['核实中'])[0].label).toBe('重新核实')
    expect(clueMoves(null)).toEqual([])
  })
  it('builds the body of a move, or says what is missing', () => {
    const form = (f = {}) => ({ note: '', cases: '', amount_recovered: undefined, ...f })
    const [yes, no] = clueMoves(['属实', '不属实'])
    const [toCase, close] = clueMoves(['转为工单', '结案'])
    expect(clueMoveBody(yes, form())).toEqual({ body: { to: '属实' } })
    expect(clueMoveBody(yes, form({ note: ' 电话核实 ', cases: '5' }))).toEqual({ body: { to: '属实', note: '电话核实' } })
    expect(clueMoveBody(no, form())).toEqual({ error: '请填写核实情况（为何不属实）' })
    expect(clueMoveBody(toCase, form({ cases: '12，15 12' }))).toEqual({ body: { to: '转为工单', case_ids: [12, 15] } })
    expect(clueMoveBody(toCase, form({ cases: '12, abc' }))).toEqual({ error: '工单编号应为正整数（收到「abc」）' })
    expect(clueMoveBody(close, form())).toEqual({ error: '请填写结案说明' })
    expect(clueMoveBody(close, form({ note: '已补发', amount_recovered: 360000 })))
      .toEqual({ body: { to: '结案', note: '已补发', amount_recovered: 360000 } })
    expect(clueMoveBody(close, form({ note: 'x', amount_recovered: -1 }))).toEqual({ error: '追回金额应为不小于 0 的整数（元）' })
  })
  it('reads case ids as people type them', () => {
    expect(parseCaseIds('')).toEqual({ ids: [] })
    expect(parseCaseIds('#3、4；5')).toEqual({ ids: [3, 4, 5] })
    expect(parseCaseIds('0')).toEqual({ error: '工单编号应为正整数（收到「0」）' })
  })
})

describe('the clue form', () => {
  it('registers what was filled in, Beijing times with their zone', () => {
    const form = { ...emptyClueForm(), source: '上级交办', title: ' 某工地拖欠农民工工资 ', received_at: '2026-03-09 09:30:00',
      district: '城阳区', workers: 30, amount: 450000, responsible_unit: '城阳区总工会', cases: '4' }
    expect(clueCreateBody(form, NOW)).toEqual({ body: {
      source: '上级交办', category: '欠薪', title: '某工地拖欠农民工工资', received_at: '2026-03-09T09:30:00+08:00',
      district: '城阳区', workers: 30, amount: 450000, responsible_unit: '城阳区总工会', case_ids: [4] } })
  })
  it('refuses what the server would', () => {
    const ok = { ...emptyClueForm(), source: '舆情监测', title: 't' }
    expect(clueCreateBody({ ...ok, source: '' }, NOW)).toEqual({ error: '请选择线索来源' })
    expect(clueCreateBody({ ...ok, title: '  ' }, NOW)).toEqual({ error: '请填写线索标题' })
    expect(clueCreateBody({ ...ok, workers: 2.5 }, NOW)).toEqual({ error: '涉及人数应为不小于 0 的整数' })
    expect(clueCreateBody({ ...ok, received_at: '2026-03-11 09:00:00' }, NOW)).toEqual({ error: '受理时间不能晚于当前时间' })
    expect(clueCreateBody({ ...ok, promised_date: '2026-03-09' }, NOW)).toEqual({ error: '承诺办结日期不能早于受理日期' })
    expect(clueCreateBody({ ...ok, promised_date: '2026-03-20', verify_due: '2026-03-21' }, NOW))
      .toEqual({ error: '核实时限不能晚于承诺办结日期' })
    expect(clueCreateBody({ ...ok, verify_due: '2026-03-01' }, NOW)).toEqual({ error: '核实时限不能早于受理日期' })
  })
  it('sends only what changed; a kept 核实时限 follows the promised date, a cleared one is counted back again', () => {
    const before = clue()
    const form = clueToForm(before)
    expect(form.received_at).toBe('2026-03-01 09:30:00')
    expect(form.cases).toBe('4')
    expect(clueUpdateBody(before, form, NOW)).toEqual({ body: {} })
    expect(clueUpdateBody(before, { ...form, promised_date: '2026-03-05', amount: null }, NOW))
      .toEqual({ body: { promised_date: '2026-03-05', amount: null } })
    expect(clueUpdateBody(before, { ...form, verify_due: '2026-03-12', cases: '' }, NOW))
      .toEqual({ body: { verify_due: '2026-03-12', case_ids: [] } })
    expect(clueUpdateBody(before, { ...form, verify_due: '' }, NOW)).toEqual({ body: { verify_lead_days: 10 } })
  })
  it('lists an import\'s row errors in words', () => {
    expect(importErrorLine({ row: 3, column: '受理时间', message: '无法识别的日期' })).toBe('第 3 行「受理时间」：无法识别的日期')
    expect(importErrorLine({ row: 0, column: null, message: '不是 Excel（.xlsx）文件' })).toBe('文件：不是 Excel（.xlsx）文件')
  })
})
