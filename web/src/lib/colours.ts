// Enterprise integrity colours (企业诚信 红橙黄蓝绿): their order, how they look, and the month-by-month history
// in words.
import type { Colour, HistoryEntry, ItemChange } from '../api/enterprises'

/** Worst first, as the API's COLOUR_RANK (红 0 … 绿 4). */
export const COLOURS: Colour[] = ['红', '橙', '黄', '蓝', '绿']

export const COLOUR_STYLES: Record<Colour, { fill: string; text: string }> = {
  红: { fill: '#d9001b', text: '#ffffff' },
  橙: { fill: '#f57c00', text: '#ffffff' },
  黄: { fill: '#f5c400', text: '#3a2e00' },
  蓝: { fill: '#1565c0', text: '#ffffff' },
  绿: { fill: '#2e7d32', text: '#ffffff' },
}

/** What a colour asks of staff (tooltip text). */
export const COLOUR_MEANINGS: Record<Colour, string> = {
  红: '红色：重点监管，劳动用工问题严重或存在未办结的红色预警',
  橙: '橙色：重点关注，劳动用工问题较多',
  黄: '黄色：一般关注，存在一定劳动用工问题',
  蓝: '蓝色：基本良好，偶有投诉',
  绿: '绿色：守法诚信，无明显劳动用工问题',
}

/** 0 for 红 … 4 for 绿; -1 for anything else. */
export function colourRank(colour: string | null | undefined): number {
  return colour ? COLOURS.indexOf(colour as Colour) : -1
}

export function colourStyle(colour: string | null | undefined): Record<string, string> {
  const c = COLOUR_STYLES[colour as Colour]
  if (!c) return { background: '#909399', color: '#ffffff', borderColor: '#909399' }
  return { background: c.fill, color: c.text, borderColor: c.fill }
}

/** Scores are shown with at most one decimal: 100 → "100", 87.5 → "87.5", 72.25 → "72.3". */
export function formatScore(score: number | null | undefined): string {
  if (score === null || score === undefined || Number.isNaN(score)) return '—'
  return String(Math.round(score * 10) / 10)
}

/** Points as staff read them: "-10", "+2", "一票否决" for a veto (0 points). */
export function formatPoints(points: number, item = ''): string {
  if (points === 0) return item.startsWith('veto') ? '一票否决' : '0'
  const p = Math.round(points * 10) / 10
  return p > 0 ? `+${p}` : String(p)
}

/** The colour distribution as rows in colour order, 0 where none (``by_colour`` or a bare {colour: n}). */
export function distributionRows(data: unknown): { colour: Colour; count: number }[] {
  let counts: Record<string, unknown> = {}
  if (data && typeof data === 'object') {
    const d = data as Record<string, unknown>
    counts = d.by_colour && typeof d.by_colour === 'object' ? (d.by_colour as Record<string, unknown>) : d
  }
  return COLOURS.map((colour) => ({ colour, count: typeof counts[colour] === 'number' ? (counts[colour] as number) : 0 }))
}

function changeText(c: ItemChange): string {
  const cases = c.added_case_ids.length ? `新增 ${c.added_case_ids.length} 件工单` : ''
  const gone = c.removed_case_ids.length ? `移出 ${c.removed_case_ids.length} 件工单` : ''
  const warnings = c.added_warning_ids.length ? `新增 ${c.added_warning_ids.length} 条预警` : ''
  const closed = c.removed_warning_ids.length ? `移出 ${c.removed_warning_ids.length} 条预警` : ''
  const what = [cases, gone, warnings, closed].filter(Boolean).join('，')
  const pts = `${formatPoints(c.before, c.item)} → ${formatPoints(c.after, c.item)}`
  return `${c.label}${what ? `（${what}）` : ''}：${pts}`
}

/** 为何变色: the server's sentence if it gave one, else the changed items; the first month says so. */
export function historyReason(entry: HistoryEntry): string {
  if (entry.explanation && entry.explanation.trim()) return entry.explanation.trim()
  if (entry.previous_colour === null || entry.previous_colour === undefined) return '首次评定'
  const parts = (entry.changes ?? []).map(changeText)
  if (entry.ruleset_changed) parts.push(`评分规则更新为第 ${entry.ruleset_version} 版`)
  return parts.length ? parts.join('；') : '与上月相比无变化'
}

/** "橙 → 红" when the colour changed from the month before, else "". */
export function colourShift(entry: HistoryEntry): string {
  if (!entry.colour_changed || !entry.previous_colour) return ''
  return `${entry.previous_colour} → ${entry.colour}`
}
