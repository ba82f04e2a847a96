// Shapes of the API's answers (app/*/models.py and the helpers' agreed contract).

export type Role = 'agent' | 'mediator' | 'manager' | 'admin'

export interface User {
  id: number
  username: string
  role: Role
  active: boolean
}

/** A word of a post-call segment and when it was said: [start, end, text], seconds from the recording's start,
 * and the decoder's probability (0–1) as a 4th element where it gave one (older rows have none). */
export type TimedWord = [start: number, end: number, text: string, probability?: number]

export interface Segment {
  id?: number
  idx?: number
  start: number
  end: number
  speaker: string
  text: string
  words?: TimedWord[] // concatenate to ``text``; [] (or absent: live segments) where none were made
  version?: number // send back with a correction; a stale one gets 409
  machine_text?: string | null // the machine's text, once a person corrected it
  edited_by?: string | null // 已校对 by
  edited_at?: string | null
}

/** PATCH /transcripts/{id}/segments/{idx}: the corrected segment and what the correction set going. */
export interface CorrectionResult {
  segment: Segment
  case_id: number | null
  changed_fields: string[]
  learned_terms: string[]
  aligned: boolean
  applied_ms: number
}

export interface Transcript {
  id: number
  kind: string
  engine: string
  model: string
  language: string
  duration: number
  processing_s: number
  created_at: string
  segments: Segment[]
}

export interface Extracted {
  value: unknown
  confidence?: number
  start?: number | null
  end?: number | null
  speaker?: string
  segment?: number
  text?: string
  status?: string // 待核实: too unsure to fill in; the agent checks and adopts or corrects it
  enterprise_id?: number // the registry entry the name resolved to (linked when staff confirm it)
}

export interface Sla {
  feedback_due_at: string | null
  feedback_overdue: boolean
  due_at: string | null
  overdue: boolean
  due_soon: boolean
}

export interface CaseSummary {
  id: number
  case_no: string
  status: string
  channel: string
  recording_id: number
  category: string
  category_confidence: number
  enterprise: string | null
  district: string | null
  summary: string
  created_at: string
  created_by?: string
  occupation?: string | null
  gender?: string | null
  age_bracket?: string | null
  enterprise_type?: string | null
  arrears_type?: string | null
  workers?: number | null
  amount?: number | null
  caller_phone?: string | null
  group_case?: boolean
  extracted?: Record<string, Extracted>
  suggested?: Record<string, unknown>
  locked_fields?: string[] | null // set or confirmed by a person: re-extraction leaves them
  confirmed_by?: string | null
  confirmed_at?: string | null
  difficulty?: string
  unit?: string | null
  assignee?: string | null
  due_at?: string | null
  closed_at?: string | null
  escalated?: boolean
  sla?: Sla
}

export interface CaseDetail extends CaseSummary {
  category_evidence: { term?: string; category?: string; start?: number; speaker?: string }[]
  transcript: Transcript | null
  /** whether this user may change the case: its assignee, anyone while it is in the pool (受理, held by nobody),
   * managers and admins (case:any); absent from older servers */
  may_change?: boolean
}

export interface Page<T> {
  total: number
  items: T[]
}

export interface SearchHit {
  case_id: number
  case_no: string
  category: string
  status: string
  enterprise: string | null
  district: string | null
  segment_id: number
  start: number
  speaker: string
  text: string
  highlighted: string
}

export interface SearchResults {
  query: string
  tokens: string[]
  total: number
  items: SearchHit[]
}

export interface AuditEvent {
  seq: number
  at: string
  actor: string
  action: string
  subject_type: string
  subject_id: string
  details: Record<string, unknown>
  hash: string
}

export interface Call {
  id: number
  call_uuid: string
  source: string
  caller: string
  called: string
  channel: string
  status: string
  started_at: string
  ended_at: string | null
  recording_id: number | null
  live_segments?: Segment[] | null
}

export interface PreviousCase {
  id: number
  case_no: string
  category: string
  status: string
  created_at: string
  summary: string
}

export interface StatsRow {
  key: string | null
  period: string | null
  cases: number
  workers: number | null
  amount: number | null
}

export interface Stats {
  group_by: string
  period: string | null
  rows: StatsRow[]
}

export interface TaxonomyCategory {
  name: string
  terms: string[]
  [k: string]: unknown
}

export interface LexiconTerm {
  id: number
  term: string
  kind?: string
  [k: string]: unknown
}

export interface Notification {
  id: number
  message?: string
  title?: string
  read?: boolean
  created_at?: string
  case_id?: number | null
  [k: string]: unknown
}
