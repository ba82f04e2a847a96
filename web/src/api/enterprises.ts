// The enterprise registry (企业库): search, detail with its cases, resolving heard names, import.
import { session } from '../auth'
import { ApiError, errorFromResponse, networkError, request, type Query } from './http'

const V1 = '/api/v1'

export interface Enterprise {
  id: number
  name: string
  credit_code: string | null
  district: string | null
  address: string
  industry: string
  enterprise_type: string | null
}

/** Integrity colours (企业诚信), worst first. */
export type Colour = '红' | '橙' | '黄' | '蓝' | '绿'

export interface EnterpriseListItem extends Enterprise {
  cases: number
  colour?: Colour // as shown: the manual override if any, else computed (绿 when never rated)
  score?: number
}

export interface EnterprisePage {
  total: number
  items: EnterpriseListItem[]
}

export interface EnterpriseAlias {
  id: number
  alias: string
  source: 'import' | 'confirmed' | 'correction' | string
  created_by: string
  created_at: string
}

export interface EnterpriseStats {
  cases: number
  open_cases: number
  amount: number
  workers: number
  group_cases: number
  by_month: { month: string; cases: number; amount: number; workers: number }[]
  categories: { category: string; cases: number }[]
}

export interface EnterpriseCase {
  id: number
  case_no: string
  status: string
  category: string
  created_at: string
  amount: number | null
  workers: number | null
  group_case: boolean
}

/** One item behind a score: deductions negative, bonuses positive, a veto (一票否决) 0. */
export interface ScoreItem {
  item: string
  label: string
  points: number
  case_ids: number[]
  warning_ids: number[]
}

export interface ColourOverride {
  colour: Colour
  reason: string
  by: string
  at: string
}

export interface ItemChange {
  item: string
  label: string
  before: number
  after: number
  added_case_ids: number[]
  removed_case_ids: number[]
  added_warning_ids: number[]
  removed_warning_ids: number[]
}

/** One monthly snapshot and what changed since the one before (为何变色). */
export interface HistoryEntry {
  month: string
  score: number
  colour: Colour
  ruleset_version: number
  computed_at: string
  items: ScoreItem[]
  previous_colour: Colour | null
  colour_changed: boolean
  ruleset_changed: boolean
  changes: ItemChange[]
  explanation: string
}

export type ObjectionStatus = '待处理' | '成立' | '不成立'

export interface Objection {
  id: number
  enterprise_id: number
  raised_by: string
  reason: string
  status: ObjectionStatus
  outcome: string | null
  decided_by: string | null
  decided_at: string | null
  created_at: string
}

export interface EnterpriseDetail extends Enterprise {
  created_at: string
  updated_at: string
  aliases: EnterpriseAlias[]
  stats: EnterpriseStats
  recent_cases: EnterpriseCase[]
  // integrity (企业诚信); optional: a server without it leaves the colour panel out
  colour?: Colour
  score?: number
  computed_colour?: Colour
  ruleset_version?: number | null
  computed_at?: string | null
  deductions?: ScoreItem[]
  override?: ColourOverride | null
  history?: HistoryEntry[]
  objections?: Objection[]
}

export interface ColourDistribution {
  total: number
  by_colour: Partial<Record<Colour, number>>
  overridden: number
}

export interface ImportResult {
  rows: number
  created: number
  updated: number
  unchanged: number
  aliases: number
}

export interface ImportRowError {
  row: number
  column: string | null
  message: string
}

export interface ResolveCandidate {
  enterprise_id: number
  name: string
  matched: string
  score: number
  district: string | null
}

export const ALIAS_SOURCES: Record<string, string> = { import: '导入', confirmed: '工单确认', correction: '转写更正' }

/** The row errors of a refused import (422), from its ApiError; empty for any other error. */
export function importErrors(e: unknown): { total: number; errors: ImportRowError[] } {
  if (e instanceof ApiError && e.status === 422 && e.body && typeof e.body === 'object') {
    const body = e.body as { errors?: ImportRowError[]; total_errors?: number }
    if (Array.isArray(body.errors)) return { total: body.total_errors ?? body.errors.length, errors: body.errors }
  }
  return { total: 0, errors: [] }
}

async function upload<T>(path: string, file: File): Promise<T> {
  const form = new FormData()
  form.append('file', file, file.name)
  const headers: Record<string, string> = { Accept: 'application/json' }
  if (session.token) headers.Authorization = `Bearer ${session.token}`
  let response: Response
  try {
    response = await fetch(path, { method: 'POST', headers, body: form })
  } catch {
    throw networkError()
  }
  let parsed: unknown = null
  try {
    parsed = await response.json()
  } catch {
    parsed = null
  }
  if (!response.ok) throw errorFromResponse(response.status, parsed)
  return parsed as T
}

export const enterpriseApi = {
  list: (query: Query) => request<EnterprisePage>(`${V1}/enterprises`, { query }),
  detail: (id: number) => request<EnterpriseDetail>(`${V1}/enterprises/${id}`),
  resolve: (name: string, limit = 5) =>
    request<{ heard: string; candidates: ResolveCandidate[] }>(`${V1}/enterprises/resolve`, { query: { name, limit } }),
  importFile: (file: File) => upload<ImportResult>(`${V1}/enterprises/import`, file),
  raiseObjection: (id: number, reason: string) =>
    request<Objection>(`${V1}/enterprises/${id}/objections`, { method: 'POST', json: { reason } }),
  decideObjection: (id: number, objectionId: number, status: '成立' | '不成立', outcome: string) =>
    request<Objection>(`${V1}/enterprises/${id}/objections/${objectionId}/decision`,
      { method: 'POST', json: { status, outcome } }),
  overrideColour: (id: number, colour: Colour | null, reason: string) =>
    request<unknown>(`${V1}/enterprises/${id}/colour-override`, { method: 'PUT', json: { colour, reason } }),
  distribution: () => request<ColourDistribution>(`${V1}/integrity/distribution`),
  linkCase: (caseId: number, enterpriseId: number | null, heardName?: string) =>
    request<{ case_id: number; enterprise_id: number | null; enterprise: string | null }>(
      `${V1}/cases/${caseId}/enterprise`, { method: 'PUT', json: { enterprise_id: enterpriseId, heard_name: heardName } }),
}
