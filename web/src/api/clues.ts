// Clues (线索) and the ledgers (台账): app/clues/models.py and app/clues/views.py.
import { request, type Query } from './http'

const V1 = '/api/v1'

export type ClueStatus = '核实中' | '属实' | '不属实' | '转为工单' | '结案'
export type ClueSource = '热线工单' | '舆情监测' | '上级交办' | '上级督办' | '来信来访' | '其他'
export type LedgerKind = 'arrears-new' | 'arrears-closed' | 'opinion'

export interface ClueListItem {
  id: number
  number: string
  source: ClueSource | string
  category: string
  title: string
  received_at: string
  enterprise: string | null
  enterprise_id: number | null
  district: string | null
  workers: number | null
  amount: number | null
  promised_date: string
  verify_due: string
  status: ClueStatus | string
  verdict: string | null
  responsible: string | null
  responsible_unit: string | null
  amount_recovered: number | null
  closed_at: string | null
  overdue: boolean
  verify_overdue: boolean
}

export interface ClueCase {
  id: number
  case_no: string
  status: string
  category: string
}

export interface ClueRead extends ClueListItem {
  content: string
  credit_code: string | null
  verify_lead_days: number
  due_at: string
  verify_due_at: string
  last_note: string
  verified_at: string | null
  created_by: string
  created_at: string
  updated_at: string
  cases: ClueCase[]
  next_statuses: string[]
}

export interface CluePagination {
  total: number
  items: ClueListItem[]
}

/** What the form sends (create: source and title required; update: only the fields changed). */
export interface ClueFields {
  source?: string
  category?: string
  title?: string
  content?: string
  received_at?: string | null
  enterprise?: string | null
  enterprise_id?: number | null
  district?: string | null
  workers?: number | null
  amount?: number | null
  promised_date?: string | null
  verify_lead_days?: number | null
  verify_due?: string | null
  responsible?: string | null
  responsible_unit?: string | null
  amount_recovered?: number | null
  case_ids?: number[] | null
}

export interface ClueTransitionIn {
  to: string
  note?: string
  case_ids?: number[]
  amount_recovered?: number
}

export interface ClueImportResult {
  rows: number
  created: number
  numbers: string[]
}

export interface LedgerRow {
  ref: 'clue' | 'case' | string
  id: number
  number: string
  source: string
  received_at: string
  enterprise: string | null
  credit_code: string | null
  district: string | null
  workers: number | null
  amount: number | null
  demand: string
  progress: string
  responsible: string
  deadline: string | null
  overdue: boolean
  closed_at: string | null
  amount_recovered: number | null
}

export interface LedgerTotals {
  rows: number
  workers: number
  amount: number
  amount_recovered: number
  overdue: number
}

export interface LedgerPage {
  kind: LedgerKind
  title: string
  total: number
  totals: LedgerTotals
  items: LedgerRow[]
  limit: number
  offset: number
}

export const clueApi = {
  list: (query: Query) => request<CluePagination>(`${V1}/clues`, { query }),
  detail: (id: number) => request<ClueRead>(`${V1}/clues/${id}`),
  create: (body: ClueFields) => request<ClueRead>(`${V1}/clues`, { method: 'POST', json: body }),
  update: (id: number, body: ClueFields) => request<ClueRead>(`${V1}/clues/${id}`, { method: 'PATCH', json: body }),
  transition: (id: number, body: ClueTransitionIn) =>
    request<ClueRead>(`${V1}/clues/${id}/transitions`, { method: 'POST', json: body }),
  importFile: (file: File) => {
    const form = new FormData()
    form.append('file', file, file.name)
    return request<ClueImportResult>(`${V1}/clues/import`, { method: 'POST', multipart: form })
  },
  ledger: (kind: LedgerKind, query: Query) => request<LedgerPage>(`${V1}/ledgers/${kind}`, { query }),
  /** the path of a ledger's XLSX (fetch it with downloadFile: the token goes in a header) */
  ledgerXlsxPath: (kind: LedgerKind) => `${V1}/ledgers/${kind}.xlsx`,
}
