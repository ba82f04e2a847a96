// Early warnings as staff see them: grades and their colours, where a warning stands and what can be done
// next, the figures and evidence behind it, Beijing time, and the rule form.
import type {
  Evidence, Grade, GroupBy, RuleIn, SnoozeIn, Thresholds, TransitionIn, Verdict, WarningAction, WarningFigures,
  WarningStatus,
} from '../api/warnings'
import { fieldLabel } from './fields'
import { parseTime } from './sla'
import { speakerLabel } from './transcript'

/** Highest first, the order they are listed and filtered in. */
export const GRADES: Grade[] = ['红', '橙', '黄', '蓝']

const RANK: Record<string, number> = { 蓝: 0, 黄: 1, 橙: 2, 红: 3 }

/** 蓝 0 < 黄 1 < 橙 2 < 红 3 (as the API's RANK); anything else -1. */
export function gradeRank(grade: string | null | undefined): number {
  return grade ? RANK[grade] ?? -1 : -1
}

/** Highest grade first, then the given tie-breaker (default: keeps the order). */
export function byGrade<T extends { grade: string }>(items: readonly T[], then?: (a: T, b: T) => number): T[] {
  return [...items].sort((a, b) => gradeRank(b.grade) - gradeRank(a.grade) || (then ? then(a, b) : 0))
}

/** The colours of Chinese emergency warnings (预警信号): fill, and the text on it. */
export const GRADE_COLOURS: Record<Grade, { fill: string; text: string }> = {
  红: { fill: '#d9001b', text: '#ffffff' },
  橙: { fill: '#f57c00', text: '#ffffff' },
  黄: { fill: '#f5c400', text: '#3a2e00' },
  蓝: { fill: '#1565c0', text: '#ffffff' },
}

export function gradeStyle(grade: string | null | undefined): Record<string, string> {
  const c = GRADE_COLOURS[grade as Grade]
  if (!c) return { background: '#909399', color: '#ffffff', borderColor: '#909399' }
  return { background: c.fill, color: c.text, borderColor: c.fill }
}

export function gradeLabel(grade: string): string {
  return grade in GRADE_COLOURS ? `${grade}色预警` : grade
}

export const WARNING_STATUSES: WarningStatus[] = ['待签收', '已签收', '已核实', '处置中', '办结']

export const WARNING_STATUS_TYPES: Record<string, 'primary' | 'success' | 'warning' | 'info' | 'danger'> = {
  待签收: 'danger', 已签收: 'warning', 已核实: 'primary', 处置中: 'primary', 办结: 'success',
}

export const VERDICTS: Verdict[] = ['属实', '误报', '信息不足']
export const ACTIONS: WarningAction[] = ['转人社监察', '约谈企业', '法律援助', '调解', '其他']

export const GROUP_BY_LABELS: Record<GroupBy, string> = {
  enterprise: '按企业',
  enterprise_category: '按企业 × 诉求类别',
  district_category: '按区市 × 诉求类别',
  district_occupation: '按区市 × 职业',
}

export type MoveKind = 'sign' | 'verify' | 'act' | 'close'

export interface Move {
  to: WarningStatus
  kind: MoveKind
  label: string
  type: 'primary' | 'success' | 'warning' | 'danger'
}

/** The buttons for the moves the server offers (``next_statuses``), in the order of the flow. */
export function nextMoves(status: string, nextStatuses: readonly string[]): Move[] {
  const moves: Move[] = []
  for (const to of WARNING_STATUSES) {
    if (!nextStatuses.includes(to)) continue
    if (to === '已签收') moves.push({ to, kind: 'sign', label: '签收', type: 'primary' })
    else if (to === '已核实') moves.push({ to, kind: 'verify', label: '核实', type: 'primary' })
    else if (to === '处置中') {
      moves.push({ to, kind: 'act', label: status === '处置中' ? '追加处置' : '联动处置', type: 'warning' })
    } else if (to === '办结') moves.push({ to, kind: 'close', label: '办结', type: 'success' })
  }
  return moves
}

export interface MoveForm {
  verdict: Verdict | ''
  action: WarningAction | ''
  note: string
  amount_recovered: number | null | undefined
  workers_covered: number | null | undefined
}

/** The request for a move, or the reason (Chinese) it cannot be sent yet. */
export function transitionBody(move: Move, form: MoveForm): { body: TransitionIn } | { error: string } {
  const note = form.note.trim()
  const body: TransitionIn = { to: move.to }
  if (move.kind === 'verify') {
    if (!form.verdict) return { error: '请选择核实结论' }
    body.verdict = form.verdict
  } else if (move.kind === 'act') {
    if (!form.action) return { error: '请选择处置方式' }
    body.action = form.action
  } else if (move.kind === 'close') {
    if (!note) return { error: '请填写办结情况' }
    for (const key of ['amount_recovered', 'workers_covered'] as const) {
      const v = form[key]
      if (v === null || v === undefined) continue
      if (!Number.isInteger(v) || v < 0) return { error: key === 'amount_recovered' ? '追回金额应为非负整数（元）' : '惠及职工应为非负整数' }
      body[key] = v
    }
  }
  if (note) body.note = note
  return { body }
}

export interface SnoozeForm {
  mode: 'until' | 'cases'
  until: string // YYYY-MM-DD
  more_cases: number | null | undefined
  reason: string
}

/** The 暂缓 request: until the end of a day (Beijing time), or until N more cases; the reason is required. */
export function snoozeBody(form: SnoozeForm, now: Date = new Date()): { body: SnoozeIn } | { error: string } {
  const reason = form.reason.trim()
  if (!reason) return { error: '请填写暂缓理由' }
  if (form.mode === 'until') {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(form.until)) return { error: '请选择暂缓至哪一天' }
    const until = `${form.until}T23:59:59+08:00`
    if (Date.parse(until) <= now.getTime()) return { error: '暂缓日期应晚于今天' }
    return { body: { until, reason } }
  }
  const n = form.more_cases
  if (n === null || n === undefined || !Number.isInteger(n) || n < 1) return { error: '请填写再增加多少件工单时恢复' }
  return { body: { more_cases: n, reason } }
}

function pad(n: number): string {
  return String(n).padStart(2, '0')
}

/** "2025-03-04 17:05" in Beijing time (UTC+8) whatever the browser's zone; "—" for none. */
export function formatBeijing(value: string | null | undefined, seconds = false): string {
  if (!value) return '—'
  const t = parseTime(value)
  if (Number.isNaN(t)) return value
  const d = new Date(t + 8 * 3600_000)
  const base = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`
  return seconds ? `${base}:${pad(d.getUTCSeconds())}` : base
}

/** "2025-03-04" (Beijing) for a date or datetime. */
export function formatBeijingDate(value: string | null | undefined): string {
  if (!value) return '—'
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return value
  return formatBeijing(value).slice(0, 10)
}

/** Whole yuan with thousands separators: 123456 → "123,456". */
export function formatYuan(n: number | null | undefined): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '—'
  return Math.round(n).toLocaleString('en-US')
}

/** The figures behind a warning as label/value pairs, only those it has. */
export function figureRows(f: WarningFigures | null | undefined): { label: string; value: string }[] {
  if (!f) return []
  const rows: { label: string; value: string }[] = []
  const num = (v: unknown): v is number => typeof v === 'number' && !Number.isNaN(v)
  if (num(f.cases)) rows.push({ label: '工单', value: `${f.cases} 件` })
  if (num(f.callers)) rows.push({ label: '来电人', value: `${f.callers} 人` })
  if (num(f.workers)) rows.push({ label: '涉及职工', value: `${f.workers} 人` })
  if (num(f.amount)) rows.push({ label: '涉及金额', value: `${formatYuan(f.amount)} 元` })
  if (num(f.group_cases) && f.group_cases > 0) rows.push({ label: '群体性案件', value: `${f.group_cases} 起` })
  if (typeof f.window_start === 'string' && typeof f.window_end === 'string') {
    rows.push({ label: '统计时段', value: `${formatBeijingDate(f.window_start)} 至 ${formatBeijingDate(f.window_end)}` })
  }
  if (num(f.expected)) rows.push({ label: '历史同期预期', value: `${f.expected.toFixed(2)} 件` })
  if (num(f.p_value)) rows.push({ label: '突增显著性', value: `p = ${f.p_value < 0.0001 ? f.p_value.toExponential(1) : f.p_value.toFixed(4)}` })
  if (Array.isArray(f.because) && f.because.length) {
    rows.push({ label: '触发依据', value: f.because.map((b) => becauseText(String(b))).join('、') })
  }
  return rows
}

/** What raised a warning, from the engine's tags: 阈值:橙 → 达到橙色阈值, 突增, 群体性, 重复发生. */
export function becauseText(tag: string): string {
  const m = /^阈值[:：](.+)$/.exec(tag)
  if (m) return `达到${m[1]}色阈值`
  return ({ 突增: '来电突增', 群体性: '含群体性案件', 重复发生: '办结后再次发生' } as Record<string, string>)[tag] ?? tag
}

/** The number of cases behind a warning. */
export function caseCount(w: { case_ids?: readonly number[]; figures?: WarningFigures }): number {
  if (w.case_ids && w.case_ids.length) return w.case_ids.length
  return typeof w.figures?.cases === 'number' ? w.figures.cases : 0
}

export interface EvidenceRow {
  field: string
  label: string
  value: string
  start: number | null
  end: number | null
  speaker: string
  text: string
  confidence: number | null
  unverified: boolean
}

function show(value: unknown): string {
  if (value === null || value === undefined || value === '') return '—'
  if (typeof value === 'boolean') return value ? '是' : '否'
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}

/** A case's evidence, one row per fact, in the order it was said (those without a second last); the summary,
 * written from the whole call, is not a fact said at one second and is left out. */
export function evidenceRows(evidence: Record<string, Evidence> | null | undefined): EvidenceRow[] {
  const rows: EvidenceRow[] = []
  for (const [field, e] of Object.entries(evidence ?? {})) {
    if (!e || typeof e !== 'object' || field === 'summary') continue // the summary is shown as such
    const start = typeof e.start === 'number' ? e.start : null
    rows.push({
      field, label: fieldLabel(field), value: show(e.value), start,
      end: typeof e.end === 'number' ? e.end : null,
      speaker: e.speaker ? speakerLabel(e.speaker) : '',
      text: typeof e.text === 'string' ? e.text : '',
      confidence: typeof e.confidence === 'number' ? e.confidence : null,
      unverified: e.status === '待核实',
    })
  }
  return rows.sort((a, b) => (a.start ?? Infinity) - (b.start ?? Infinity) || a.field.localeCompare(b.field))
}

const DETAIL_LABELS: Record<string, string> = {
  verdict: '结论', action: '处置方式', note: '说明', reason: '理由', grade: '等级', until: '暂缓至',
  more_cases: '再增工单（件）', amount_recovered: '追回金额（元）', workers_covered: '惠及职工（人）', level: '上报层级',
  rule: '规则', why: '原因', cases: '工单',
}

/** A timeline event's details in a line: "已签收 → 已核实；结论：属实；说明：…" (a grade change for
 * ``warning.upgraded``); keys without a label (internal) are left out. */
export function describeDetails(details: Record<string, unknown> | null | undefined, action = ''): string {
  const d = details ?? {}
  const parts: string[] = []
  if (typeof d.from === 'string' && typeof d.to === 'string') {
    parts.push(action === 'warning.upgraded' ? `${d.from}色 → ${d.to}色` : `${d.from} → ${d.to}`)
  }
  for (const [k, v] of Object.entries(d)) {
    if (v === null || v === undefined || v === '' || (Array.isArray(v) && !v.length)) continue
    const label = DETAIL_LABELS[k]
    if (!label) continue
    if (k === 'level') {
      parts.push(`${label}：${v === 2 ? '系统管理员' : '管理人员'}`)
      continue
    }
    const value = k === 'until' && typeof v === 'string' ? formatBeijing(v)
      : k === 'cases' && Array.isArray(v) ? `${v.length} 件`
        : Array.isArray(v) ? v.join('、') : show(v)
    parts.push(`${label}：${value}`)
  }
  return parts.join('；')
}

/** "user:wang" → "wang"; "system" → "系统". */
export function actorName(actor: string | null | undefined): string {
  if (!actor) return '—'
  if (actor === 'system' || actor.startsWith('system:')) return '系统'
  return actor.replace(/^(user|cli):/, '')
}

// --- the rule form ---------------------------------------------------------------------------------------

export const THRESHOLD_KEYS: { key: keyof Thresholds; label: string; unit: string }[] = [
  { key: 'cases', label: '工单数', unit: '件' },
  { key: 'callers', label: '来电人数', unit: '人' },
  { key: 'workers', label: '涉及职工', unit: '人' },
  { key: 'amount', label: '涉及金额', unit: '元' },
]

export interface RuleForm extends Omit<RuleIn, 'grades' | 'burst_alpha'> {
  grades: Record<Grade, Record<keyof Thresholds, number | null>>
  burst: boolean
  burst_alpha: string // as typed: significance levels like 0.00001 must not be rounded by a number box
}

/** A small probability in plain decimals: 1e-5 → "0.00001", 0.01 → "0.01" (never "1e-5"). */
export function formatAlpha(p: number | null | undefined): string {
  if (p === null || p === undefined || Number.isNaN(p)) return ''
  return p.toFixed(12).replace(/\.?0+$/, '')
}

export function emptyRule(): RuleIn {
  return {
    name: '', group_by: 'enterprise', categories: [], window_days: 7, min_cases: 2, grades: {}, burst_alpha: null,
    burst_grade: '黄', baseline_days: 180, floor_per_day: 0, group_case_red: true, repeat_red: true, repeat_days: 90,
    active: true,
  }
}

/** A rule as the edit form holds it: every grade × threshold present (null: not set), the burst test on/off. */
export function ruleToForm(rule: RuleIn): RuleForm {
  const grades = {} as RuleForm['grades']
  for (const g of GRADES) {
    const t = rule.grades?.[g] ?? {}
    grades[g] = { cases: t.cases ?? null, callers: t.callers ?? null, workers: t.workers ?? null, amount: t.amount ?? null }
  }
  return {
    name: rule.name, group_by: rule.group_by, categories: [...(rule.categories ?? [])], window_days: rule.window_days,
    min_cases: rule.min_cases, grades, burst: rule.burst_alpha !== null && rule.burst_alpha !== undefined,
    burst_alpha: formatAlpha(rule.burst_alpha ?? 0.00001), burst_grade: rule.burst_grade, baseline_days: rule.baseline_days,
    floor_per_day: rule.floor_per_day, group_case_red: rule.group_case_red, repeat_red: rule.repeat_red,
    repeat_days: rule.repeat_days, active: rule.active,
  }
}

/** The form back as the API's RuleIn (grades without any threshold left out), or why it cannot be saved. */
export function formToRule(form: RuleForm): { rule: RuleIn } | { error: string } {
  const name = form.name.trim()
  if (!name) return { error: '请填写规则名称' }
  if (!Number.isInteger(form.window_days) || form.window_days < 1 || form.window_days > 365) {
    return { error: '统计窗口应为 1–365 天' }
  }
  if (!Number.isInteger(form.min_cases) || form.min_cases < 1) return { error: '最少工单数应为正整数' }
  const grades: RuleIn['grades'] = {}
  for (const g of GRADES) {
    const t: Thresholds = {}
    for (const { key, label } of THRESHOLD_KEYS) {
      const v = form.grades[g]?.[key]
      if (v === null || v === undefined) continue
      if (!Number.isInteger(v) || v < 1) return { error: `${g}色预警的“${label}”阈值应为正整数` }
      t[key] = v
    }
    if (Object.keys(t).length) grades[g] = t
  }
  const alpha = Number(form.burst_alpha.trim())
  if (form.burst && !(form.burst_alpha.trim() && alpha > 0 && alpha < 0.5)) {
    return { error: '突增检验显著性水平应为大于 0、小于 0.5 的小数，如 0.00001' }
  }
  return {
    rule: {
      name, group_by: form.group_by, categories: form.categories.map((c) => c.trim()).filter(Boolean),
      window_days: form.window_days, min_cases: form.min_cases, grades,
      burst_alpha: form.burst ? alpha : null, burst_grade: form.burst_grade, baseline_days: form.baseline_days,
      floor_per_day: form.floor_per_day, group_case_red: form.group_case_red, repeat_red: form.repeat_red,
      repeat_days: form.repeat_days, active: form.active,
    },
  }
}

/** A grade's thresholds in words: "工单数 ≥ 5 件 或 涉及职工 ≥ 30 人". */
export function thresholdText(t: Thresholds | null | undefined): string {
  const parts = THRESHOLD_KEYS.filter(({ key }) => typeof t?.[key] === 'number')
    .map(({ key, label, unit }) => `${label} ≥ ${key === 'amount' ? formatYuan(t![key]!) : t![key]} ${unit}`)
  return parts.length ? parts.join(' 或 ') : '—'
}
