// Reports (报告) as staff see them: kinds, periods in Chinese, the archive's headline figures, digests.
import type { ReportKind } from '../api/reports'
import { formatYuan } from './warnings'

export const REPORT_KINDS: { kind: ReportKind; label: string; title: string }[] = [
  { kind: 'monthly', label: '月报', title: '12351职工服务热线月度分析报告' },
  { kind: 'daily', label: '日报', title: '企业预警风险信息日报' },
]

export function reportKindLabel(kind: string): string {
  return REPORT_KINDS.find((k) => k.kind === kind)?.label ?? kind
}

/** 2026-03 → "2026年3月"; 2026-03-05 → "2026年3月5日"; anything else as it is. */
export function periodLabel(period: string): string {
  const m = /^(\d{4})-(\d{2})(?:-(\d{2}))?$/.exec(period)
  if (!m) return period
  return `${Number(m[1])}年${Number(m[2])}月${m[3] ? `${Number(m[3])}日` : ''}`
}

/** Whether ``period`` is the form the kind needs (月报 YYYY-MM, 日报 YYYY-MM-DD) and not in the future
 * (``today``: Beijing, YYYY-MM-DD); the reason when not. */
export function periodError(kind: ReportKind, period: string, today: string): string | null {
  if (!period) return kind === 'monthly' ? '请选择月份' : '请选择日期'
  if (kind === 'monthly' && !/^\d{4}-(0[1-9]|1[0-2])$/.test(period)) return '月份格式应为 YYYY-MM'
  if (kind === 'daily' && !/^\d{4}-\d{2}-\d{2}$/.test(period)) return '日期格式应为 YYYY-MM-DD'
  if (period > today.slice(0, period.length)) return `${periodLabel(period)}尚未开始`
  return null
}

/** The first 8 and last 4 hex digits of a sha256 ("3f2a9c01…7be4"): enough to tell files apart by eye. */
export function shortSha(sha: string | null | undefined): string {
  if (!sha) return '—'
  return sha.length > 16 ? `${sha.slice(0, 8)}…${sha.slice(-4)}` : sha
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null
}

function percent(v: unknown, signed = false): string | null {
  const n = num(v)
  if (n === null) return null
  const text = `${(n * 100).toFixed(1)}%`
  return signed && n > 0 ? `+${text}` : text
}

/** The headline figures archived with a report, as "label：value" pairs (those it has). */
export function summaryRows(kind: string, summary: Record<string, unknown> | null | undefined):
  { label: string; value: string }[] {
  const s = summary ?? {}
  const rows: { label: string; value: string }[] = []
  const add = (label: string, value: string | null) => {
    if (value !== null) rows.push({ label, value })
  }
  const n = (k: string, unit: string) => (num(s[k]) === null ? null : `${num(s[k])} ${unit}`)
  if (kind === 'monthly') {
    add('受理工单', n('cases', '件'))
    add('环比', percent(s.mom, true) ?? (num(s.cases) !== null ? '—' : null))
    add('同比', percent(s.yoy, true) ?? (num(s.cases) !== null ? '—' : null))
    add('涉及职工', n('workers', '人'))
    add('涉及金额', num(s.amount) === null ? null : `${formatYuan(num(s.amount))} 元`)
    add('群体性案件', n('group_cases', '件'))
    add('办结', n('closed', '件'))
    add('逾期', n('overdue', '件'))
    add('按期办结率', percent(s.on_time_rate))
    add('预警发出 / 办结', num(s.warnings_raised) === null ? null : `${num(s.warnings_raised)} / ${num(s.warnings_closed) ?? 0}`)
    add('追回金额', num(s.amount_recovered) === null ? null : `${formatYuan(num(s.amount_recovered))} 元`)
    if (Array.isArray(s.hot_terms) && s.hot_terms.length) add('热点词', s.hot_terms.slice(0, 8).join('、'))
  } else {
    add('新增预警', n('new_warnings', '条'))
    const g = s.new_by_grade
    if (g && typeof g === 'object') {
      const parts = Object.entries(g as Record<string, unknown>).filter(([, v]) => num(v)).map(([k, v]) => `${k}${v}`)
      if (parts.length) add('按等级', parts.join('、'))
    }
    add('升级', n('upgraded', '条'))
    add('上报', n('escalated', '条'))
    add('企业变色', num(s.colour_changes) === null ? null
      : `${num(s.colour_changes)} 家${num(s.worse) ? `（转差 ${num(s.worse)} 家）` : ''}`)
    add('未办结预警', n('open_warnings', '条'))
  }
  return rows
}
