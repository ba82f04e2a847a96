// Early warnings (预警中心): the list, one warning with its cases and timeline, its moves, and the rules
// (app/warnings/models.py).
import { request, type Query } from './http'

const V1 = '/api/v1'

export type Grade = '红' | '橙' | '黄' | '蓝'
export type WarningStatus = '待签收' | '已签收' | '已核实' | '处置中' | '办结'
export type Verdict = '属实' | '误报' | '信息不足'
export type WarningAction = '转人社监察' | '约谈企业' | '法律援助' | '调解' | '其他'
export type GroupBy = 'enterprise' | 'enterprise_category' | 'district_category' | 'district_occupation'

/** The figures behind a grade (any may be missing): window_start/window_end are ISO dates or datetimes. */
export interface WarningFigures {
  cases?: number
  callers?: number
  workers?: number
  amount?: number
  window_start?: string
  window_end?: string
  group_cases?: number
  because?: string[]
  p_value?: number | null
  expected?: number | null
  [k: string]: unknown
}

export interface WarningListItem {
  id: number
  grade: Grade
  status: WarningStatus
  subject: string
  group_by: GroupBy
  rule_id: number
  rule_name: string
  enterprise_id: number | null
  district: string | null
  category: string | null
  reason: string
  figures: WarningFigures
  case_ids: number[]
  raised_at: string
  first_case_at: string
  sign_due_at: string
  overdue: boolean
  escalation_level: number
  snoozed: boolean
  inhibited_by_id: number | null
  verdict: Verdict | null
  closed_at: string | null
}

export interface WarningPagination {
  total: number
  items: WarningListItem[]
}

/** One fact of a case and where it was said: the sentence, its second and speaker. */
export interface Evidence {
  value?: unknown
  confidence?: number | null
  start?: number | null
  end?: number | null
  speaker?: string | null
  segment?: number | null
  text?: string | null
  status?: string | null
  [k: string]: unknown
}

export interface WarningCase {
  id: number
  case_no: string
  status: string
  category: string
  enterprise: string | null
  district: string | null
  workers: number | null
  amount: number | null
  group_case: boolean
  created_at: string
  recording_id: number | null
  evidence: Record<string, Evidence>
  summary: string
}

export interface TimelineEvent {
  at: string
  actor: string
  action: string
  label: string
  details: Record<string, unknown>
}

export interface WarningActionRecord {
  action?: string
  note?: string | null
  by?: string
  at?: string
  [k: string]: unknown
}

export interface WarningRead extends WarningListItem {
  rule_version: number
  signed_by: string | null
  signed_at: string | null
  verified_by: string | null
  verified_at: string | null
  actions: WarningActionRecord[]
  amount_recovered: number | null
  workers_covered: number | null
  outcome: string | null
  closed_by: string | null
  snoozed_until: string | null
  snooze_cases: number | null
  snooze_reason: string | null
  cases: WarningCase[]
  timeline: TimelineEvent[]
  next_statuses: WarningStatus[]
}

export interface TransitionIn {
  to: WarningStatus
  verdict?: Verdict
  action?: WarningAction
  note?: string
  amount_recovered?: number
  workers_covered?: number
}

export interface SnoozeIn {
  until?: string
  more_cases?: number
  reason: string
}

export interface Thresholds {
  callers?: number | null
  cases?: number | null
  workers?: number | null
  amount?: number | null
}

export interface RuleIn {
  name: string
  group_by: GroupBy
  categories: string[]
  window_days: number
  min_cases: number
  grades: Partial<Record<Grade, Thresholds>>
  burst_alpha: number | null
  burst_grade: Grade
  baseline_days: number
  floor_per_day: number
  group_case_red: boolean
  repeat_red: boolean
  repeat_days: number
  active: boolean
}

export interface RuleRead extends RuleIn {
  id: number
  version: number
  updated_by: string
  updated_at: string
}

export interface EvaluationRead {
  cases: number
  raised: number
  attached: number
  upgraded: number
  escalated: number
  woken: number
  seconds: number
}

export interface DistrictGrades {
  district: string | null
  total: number
  [grade: string]: number | string | null
}

export interface WarningSummary {
  by_grade: Partial<Record<Grade, number>>
  by_district: DistrictGrades[]
  new: number
  overdue: number
}

export const warningApi = {
  list: (query: Query) => request<WarningPagination>(`${V1}/warnings`, { query }),
  summary: () => request<WarningSummary>(`${V1}/warnings/summary`),
  detail: (id: number) => request<WarningRead>(`${V1}/warnings/${id}`),
  transition: (id: number, body: TransitionIn) =>
    request<WarningRead>(`${V1}/warnings/${id}/transitions`, { method: 'POST', json: body }),
  snooze: (id: number, body: SnoozeIn) =>
    request<WarningRead>(`${V1}/warnings/${id}/snooze`, { method: 'POST', json: body }),
  wake: (id: number) => request<WarningRead>(`${V1}/warnings/${id}/snooze`, { method: 'DELETE' }),
  rules: () => request<RuleRead[]>(`${V1}/warning-rules`),
  createRule: (rule: RuleIn) => request<RuleRead>(`${V1}/warning-rules`, { method: 'POST', json: rule }),
  updateRule: (id: number, rule: RuleIn) =>
    request<RuleRead>(`${V1}/warning-rules/${id}`, { method: 'PUT', json: rule }),
  evaluate: () => request<EvaluationRead>(`${V1}/warnings/evaluate`, { method: 'POST' }),
}
