// Clocks: call duration, SLA deadlines (time left or overdue), in the way staff read them.

function pad(n: number): string {
  return String(n).padStart(2, '0')
}

/** 0 → "00:00", 75 → "01:15", 3725 → "01:02:05", 90061 → "1天 01:01:01" (negative: its absolute value). */
export function formatClock(totalSeconds: number): string {
  const s = Math.floor(Math.abs(totalSeconds))
  const days = Math.floor(s / 86400)
  const h = Math.floor((s % 86400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  const sec = s % 60
  if (days > 0) return `${days}天 ${pad(h)}:${pad(m)}:${pad(sec)}`
  if (h > 0) return `${pad(h)}:${pad(m)}:${pad(sec)}`
  return `${pad(m)}:${pad(sec)}`
}

export type SlaLevel = 'none' | 'ok' | 'soon' | 'overdue' | 'done'

export interface SlaState {
  level: SlaLevel
  label: string
  seconds: number | null
}

/** The state of a deadline at ``now``: time left (due soon within ``soonSeconds``), or how long overdue. */
export function slaState(dueAt: string | null | undefined, now: Date, options: { soonSeconds?: number;
  doneAt?: string | null } = {}): SlaState {
  if (!dueAt) return { level: 'none', label: '未设定时限', seconds: null }
  const due = parseTime(dueAt)
  if (Number.isNaN(due)) return { level: 'none', label: '时限无效', seconds: null }
  if (options.doneAt) {
    const done = parseTime(options.doneAt)
    return done <= due
      ? { level: 'done', label: '按时完成', seconds: null }
      : { level: 'overdue', label: `超时 ${formatClock((done - due) / 1000)} 完成`, seconds: (due - done) / 1000 }
  }
  const left = (due - now.getTime()) / 1000
  if (left < 0) return { level: 'overdue', label: `已超时 ${formatClock(-left)}`, seconds: left }
  const soon = options.soonSeconds ?? 24 * 3600
  return { level: left <= soon ? 'soon' : 'ok', label: `剩余 ${formatClock(left)}`, seconds: left }
}

/** API datetimes are UTC; those without a zone (SQLite) are read as UTC too. */
export function parseTime(value: string): number {
  const hasZone = /[zZ]|[+-]\d\d:?\d\d$/.test(value)
  return Date.parse(hasZone ? value : `${value}Z`)
}

/** "2025-03-04 09:05" in the browser's zone. */
export function formatDateTime(value: string | null | undefined): string {
  if (!value) return '—'
  const t = parseTime(value)
  if (Number.isNaN(t)) return value
  const d = new Date(t)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`
}

/** Seconds into a recording as "m:ss" (evidence links, search hits). */
export function formatOffset(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return ''
  const s = Math.max(0, Math.floor(seconds))
  return `${Math.floor(s / 60)}:${pad(s % 60)}`
}
