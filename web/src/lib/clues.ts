// Clues (线索) and ledgers (台账) as staff see them: labels, the workflow's moves, the form and its checks, the
// ledger filters. The server decides (app/clues/service.py); this asks for what a move needs before sending.
import type { ClueFields, ClueRead, ClueTransitionIn, LedgerKind } from '../api/clues'
import type { Query } from '../api/http'
import { STATUSES as CASE_STATUSES } from './fields'

type TagType = 'primary' | 'success' | 'warning' | 'info' | 'danger'

export const CLUE_STATUSES = ['核实中', '属实', '不属实', '转为工单', '结案'] as const
export const CLUE_SOURCES = ['热线工单', '舆情监测', '上级交办', '上级督办', '来信来访', '其他'] as const
export const DEFAULT_VERIFY_LEAD_DAYS = 10 // 核实 due this many days before the promised date
export const OPINION_SOURCES = ['舆情监测', '上级交办', '上级督办']

export const CLUE_STATUS_TYPES: Record<string, TagType> = {
  核实中: 'warning', 属实: 'danger', 不属实: 'info', 转为工单: 'primary', 结案: 'success',
}

/** The three ledgers: what each lists and which day its period filter applies to. */
export const LEDGERS: { kind: LedgerKind; title: string; periodLabel: string; hint: string }[] = [
  { kind: 'arrears-new', title: '新增欠薪线索清单', periodLabel: '受理日期',
    hint: '期间内受理的欠薪线索及欠薪类热线工单（已关联线索的工单只列一次）' },
  { kind: 'arrears-closed', title: '已办结欠薪线索清单', periodLabel: '办结日期',
    hint: '期间内办结（结案）的欠薪线索及欠薪类热线工单' },
  { kind: 'opinion', title: '舆情核实清单', periodLabel: '受理日期',
    hint: '期间内受理的舆情监测、上级交办、上级督办线索' },
]

export function ledgerOf(kind: string | null | undefined): (typeof LEDGERS)[number] {
  return LEDGERS.find((l) => l.kind === kind) ?? LEDGERS[0]
}

/** A ledger row's own status is a clue's (核实中…结案) or a case's (受理…办结): both may be filtered on. */
export const LEDGER_STATUSES: string[] = [...new Set<string>([...CLUE_STATUSES, ...CASE_STATUSES])]

export interface LedgerFilters {
  period: [string, string] | null // Beijing days YYYY-MM-DD, inclusive
  district: string
  status: string
}

/** The query of a ledger page (``page`` from 1) or, without paging, of its XLSX. */
export function ledgerQuery(f: LedgerFilters, page?: number, size?: number): Query {
  const q: Query = {
    period_start: f.period?.[0] || undefined, period_end: f.period?.[1] || undefined,
    district: f.district || undefined, status: f.status || undefined,
  }
  if (page !== undefined && size !== undefined) {
    q.limit = size
    q.offset = (Math.max(1, page) - 1) * size
  }
  return q
}

// --- Beijing calendar days -----------------------------------------------------------------------------------

function pad(n: number): string {
  return String(n).padStart(2, '0')
}

/** Today's date in Beijing (UTC+8), "YYYY-MM-DD", whatever the browser's zone. */
export function beijingToday(now: Date = new Date()): string {
  const d = new Date(now.getTime() + 8 * 3600_000)
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`
}

/** This month in Beijing, "YYYY-MM". */
export function beijingMonth(now: Date = new Date()): string {
  return beijingToday(now).slice(0, 7)
}

/** Whole days from ``from`` to ``to`` (both YYYY-MM-DD): positive when ``to`` is later. */
export function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86400_000)
}

/** Shortcuts of the period picker: 本月, 上月, 本季度, 本年 (Beijing days). */
export function periodShortcuts(now: Date = new Date()): { text: string; value: [string, string] }[] {
  const today = beijingToday(now)
  const y = Number(today.slice(0, 4))
  const m = Number(today.slice(5, 7))
  const first = (yy: number, mm: number) => `${yy}-${pad(mm)}-01`
  const last = (yy: number, mm: number) => {
    const d = new Date(Date.UTC(yy, mm, 0))
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`
  }
  const py = m === 1 ? y - 1 : y
  const pm = m === 1 ? 12 : m - 1
  const q = Math.floor((m - 1) / 3) * 3 + 1
  return [
    { text: '本月', value: [first(y, m), today] },
    { text: '上月', value: [first(py, pm), last(py, pm)] },
    { text: '本季度', value: [first(y, q), today] },
    { text: '本年', value: [`${y}-01-01`, today] },
  ]
}

/** A clue's promised date as staff read it: 剩余 N 天 / 今日到期 / 逾期 N 天 / 已按期结案 / 逾期结案. */
export function deadlineState(clue: Pick<ClueRead, 'promised_date' | 'status' | 'overdue' | 'closed_at'>,
  now: Date = new Date()): { label: string; level: 'ok' | 'soon' | 'overdue' | 'done' } {
  if (clue.status === '结案') {
    return clue.overdue ? { label: '逾期结案', level: 'overdue' } : { label: '按期结案', level: 'done' }
  }
  const left = daysBetween(beijingToday(now), clue.promised_date)
  if (left < 0) return { label: `逾期 ${-left} 天`, level: 'overdue' }
  if (left === 0) return { label: '今日到期', level: 'soon' }
  return { label: `剩余 ${left} 天`, level: left <= 3 ? 'soon' : 'ok' }
}

// --- the workflow ----------------------------------------------------------------------------------------------

export interface ClueMove {
  to: string
  label: string
  type: TagType
  /** what the dialog asks for */
  note: 'required' | 'optional'
  cases: boolean
  amount: boolean
}

const MOVE_LABELS: Record<string, { label: string; type: TagType }> = {
  属实: { label: '核实属实', type: 'danger' },
  不属实: { label: '核实不属实', type: 'info' },
  转为工单: { label: '转为工单', type: 'primary' },
  结案: { label: '结案', type: 'success' },
  核实中: { label: '重新核实', type: 'warning' },
}

/** The moves the server offers from here (``next_statuses``), in its order, labelled for staff. */
export function clueMoves(nextStatuses: readonly string[] | null | undefined): ClueMove[] {
  return (nextStatuses ?? []).map((to) => ({
    to, label: MOVE_LABELS[to]?.label ?? to, type: MOVE_LABELS[to]?.type ?? 'primary',
    note: to === '不属实' || to === '结案' ? 'required' : 'optional',
    cases: to === '转为工单', amount: to === '结案',
  }))
}

export interface ClueMoveForm {
  note: string
  cases: string // case ids typed: "12, 15"
  amount_recovered: number | null | undefined
}

/** Case ids as typed ("12，15 18"): the numbers, or why not. */
export function parseCaseIds(text: string): { ids: number[] } | { error: string } {
  const parts = text.split(/[\s,，、;；]+/).map((p) => p.trim()).filter(Boolean)
  const ids: number[] = []
  for (const p of parts) {
    const n = Number(p.replace(/^#/, ''))
    if (!Number.isInteger(n) || n <= 0) return { error: `工单编号应为正整数（收到「${p}」）` }
    if (!ids.includes(n)) ids.push(n)
  }
  return { ids }
}

/** The body of a move, or why it cannot be sent (as the server would say). */
export function clueMoveBody(move: ClueMove, form: ClueMoveForm): { body: ClueTransitionIn } | { error: string } {
  const note = form.note.trim()
  if (move.note === 'required' && !note) {
    return { error: move.to === '不属实' ? '请填写核实情况（为何不属实）' : '请填写结案说明' }
  }
  const body: ClueTransitionIn = { to: move.to }
  if (note) body.note = note
  if (move.cases && form.cases.trim()) {
    const parsed = parseCaseIds(form.cases)
    if ('error' in parsed) return parsed
    if (parsed.ids.length) body.case_ids = parsed.ids
  }
  if (move.amount && form.amount_recovered !== null && form.amount_recovered !== undefined) {
    const a = form.amount_recovered
    if (!Number.isInteger(a) || a < 0) return { error: '追回金额应为不小于 0 的整数（元）' }
    body.amount_recovered = a
  }
  return { body }
}

// --- the form --------------------------------------------------------------------------------------------------

export interface ClueForm {
  source: string
  category: string
  title: string
  content: string
  received_at: string // "YYYY-MM-DD HH:mm:ss", Beijing; empty: now
  enterprise: string
  district: string
  workers: number | null | undefined
  amount: number | null | undefined
  promised_date: string // YYYY-MM-DD; empty: 15 days after receipt
  verify_due: string // YYYY-MM-DD; empty: 10 days before the promised date
  responsible: string
  responsible_unit: string
  cases: string // linked case ids
}

export function emptyClueForm(): ClueForm {
  return {
    source: '', category: '欠薪', title: '', content: '', received_at: '', enterprise: '', district: '',
    workers: undefined, amount: undefined, promised_date: '', verify_due: '', responsible: '', responsible_unit: '',
    cases: '',
  }
}

export function clueToForm(c: ClueRead): ClueForm {
  return {
    source: c.source, category: c.category, title: c.title, content: c.content ?? '',
    received_at: formatBeijingSeconds(c.received_at), enterprise: c.enterprise ?? '', district: c.district ?? '',
    workers: c.workers ?? undefined, amount: c.amount ?? undefined, promised_date: c.promised_date,
    verify_due: c.verify_due, responsible: c.responsible ?? '', responsible_unit: c.responsible_unit ?? '',
    cases: (c.cases ?? []).map((x) => x.id).join(', '),
  }
}

/** "YYYY-MM-DD HH:mm:ss" in Beijing for an API instant (UTC; without a zone: UTC). */
export function formatBeijingSeconds(value: string | null | undefined): string {
  if (!value) return ''
  const hasZone = /[zZ]|[+-]\d\d:?\d\d$/.test(value)
  const t = Date.parse(hasZone ? value : `${value}Z`)
  if (Number.isNaN(t)) return ''
  const d = new Date(t + 8 * 3600_000)
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} `
    + `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
}

/** A Beijing wall-clock time typed in the form as an ISO instant with its zone. */
function beijingInstant(text: string): string {
  return `${text.trim().replace(' ', 'T')}+08:00`
}

function count(value: number | null | undefined, label: string): { value: number | null } | { error: string } {
  if (value === null || value === undefined || (typeof value === 'number' && Number.isNaN(value))) return { value: null }
  if (!Number.isInteger(value) || value < 0) return { error: `${label}应为不小于 0 的整数` }
  return { value }
}

/** The form as the API's fields (all of them), or why it cannot be saved. */
export function clueFormFields(form: ClueForm, now: Date = new Date()): { fields: ClueFields } | { error: string } {
  if (!form.source) return { error: '请选择线索来源' }
  const title = form.title.trim()
  if (!title) return { error: '请填写线索标题' }
  if (!form.category) return { error: '请选择类别' }
  const workers = count(form.workers, '涉及人数')
  if ('error' in workers) return workers
  const amount = count(form.amount, '涉及金额')
  if ('error' in amount) return amount
  const received = form.received_at ? form.received_at.slice(0, 10) : beijingToday(now)
  if (form.received_at && Date.parse(beijingInstant(form.received_at)) > now.getTime() + 5 * 60_000) {
    return { error: '受理时间不能晚于当前时间' }
  }
  if (form.promised_date && form.promised_date < received) return { error: '承诺办结日期不能早于受理日期' }
  if (form.verify_due) {
    if (form.verify_due < received) return { error: '核实时限不能早于受理日期' }
    if (form.promised_date && form.verify_due > form.promised_date) return { error: '核实时限不能晚于承诺办结日期' }
  }
  const cases = parseCaseIds(form.cases)
  if ('error' in cases) return cases
  const text = (s: string) => s.trim() || null
  const fields: ClueFields = {
    source: form.source, category: form.category, title, content: form.content.trim(),
    received_at: form.received_at ? beijingInstant(form.received_at) : null, enterprise: text(form.enterprise),
    district: form.district || null, workers: workers.value, amount: amount.value,
    promised_date: form.promised_date || null, verify_due: form.verify_due || null,
    responsible: text(form.responsible), responsible_unit: text(form.responsible_unit), case_ids: cases.ids,
  }
  return { fields }
}

/** A new clue's body: what was filled in (left-out fields take the server's defaults). */
export function clueCreateBody(form: ClueForm, now: Date = new Date()): { body: ClueFields } | { error: string } {
  const made = clueFormFields(form, now)
  if ('error' in made) return made
  const body: ClueFields = {}
  for (const [k, v] of Object.entries(made.fields) as [keyof ClueFields, unknown][]) {
    if (v === null || v === '' || (Array.isArray(v) && !v.length)) continue
    ;(body as Record<string, unknown>)[k] = v
  }
  return { body }
}

/** A change's body: only the fields that differ from the clue as loaded (nothing: an empty object). A 核实时限
 * left as it was follows the promised date (倒排工期, on the server); one cleared is counted back again from it. */
export function clueUpdateBody(before: ClueRead, form: ClueForm, now: Date = new Date()):
  { body: ClueFields } | { error: string } {
  const verifyKept = form.verify_due === before.verify_due
  const made = clueFormFields(verifyKept ? { ...form, verify_due: '' } : form, now)
  if ('error' in made) return made
  const old = clueFormFields({ ...clueToForm(before), verify_due: '' }, now)
  const was: ClueFields = 'fields' in old ? old.fields : {}
  const body: ClueFields = {}
  for (const [k, v] of Object.entries(made.fields) as [keyof ClueFields, unknown][]) {
    if (k === 'verify_due') continue
    const prev = was[k]
    const same = k === 'case_ids'
      ? [...((v as number[]) ?? [])].sort().join() === [...((prev as number[]) ?? [])].sort().join()
      : (v ?? null) === (prev ?? null)
    if (!same) (body as Record<string, unknown>)[k] = v
  }
  if (!verifyKept) {
    if (form.verify_due) body.verify_due = form.verify_due
    else body.verify_lead_days = DEFAULT_VERIFY_LEAD_DAYS
  }
  return { body }
}

/** The row errors of a refused XLSX import, each as a line: "第 3 行「受理时间」：…". */
export function importErrorLine(e: { row: number; column: string | null; message: string }): string {
  const where = e.row > 0 ? `第 ${e.row} 行` : '文件'
  return e.column ? `${where}「${e.column}」：${e.message}` : `${where}：${e.message}`
}

/** The headers an import file may use (first sheet; a title line above the header is allowed). */
export const IMPORT_HEADERS = ['来源', '类别', '标题', '内容', '受理时间', '企业名称', '统一社会信用代码', '区市',
  '涉及人数', '金额', '承诺办结日期', '核实时限', '责任人', '责任单位']
