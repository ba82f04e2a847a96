import type { StatsRow } from '../api/types'

const NONE = '未填写'

/** Rows summed by key (periods merged), largest first; an empty key is "未填写". */
export function aggregate(rows: readonly StatsRow[]): { key: string; cases: number }[] {
  const sums = new Map<string, number>()
  for (const r of rows) {
    const key = r.key === null || r.key === '' ? NONE : r.key
    sums.set(key, (sums.get(key) ?? 0) + r.cases)
  }
  return [...sums].map(([key, cases]) => ({ key, cases })).sort((a, b) => b.cases - a.cases || a.key.localeCompare(b.key))
}

/** Rows by period as chart series: the sorted periods, and for each key its count per period (0 where none). */
export function periodSeries(rows: readonly StatsRow[]): { periods: string[]; series: { name: string; data: number[] }[] } {
  const periods = [...new Set(rows.map((r) => r.period ?? ''))].sort()
  const keys = aggregate(rows).map((r) => r.key)
  const index = new Map(periods.map((p, i) => [p, i]))
  const series = keys.map((name) => ({ name, data: periods.map(() => 0) }))
  const byName = new Map(series.map((s) => [s.name, s]))
  for (const r of rows) {
    const s = byName.get(r.key === null || r.key === '' ? NONE : r.key)
    s!.data[index.get(r.period ?? '')!] += r.cases
  }
  return { periods, series }
}
