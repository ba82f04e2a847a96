// Reports (月度分析报告, 企业预警风险信息日报) and the case/transcript exports: app/reports, app/exports.
import { request, type Query } from './http'

const V1 = '/api/v1'

export type ReportKind = 'monthly' | 'daily'
export type ReportFormat = 'docx' | 'pdf'
export type CaseExportFormat = 'pdf' | 'docx'
export type TranscriptExportFormat = 'docx' | 'pdf' | 'srt' | 'txt'

export interface ReportFile {
  format: ReportFormat
  filename: string
  sha256: string
  size: number
  url: string
}

export interface ReportRead {
  id: number
  kind: ReportKind
  period: string
  title: string
  parameters: Record<string, unknown>
  summary: Record<string, unknown>
  files: ReportFile[]
  generated_by: string
  generated_at: string
  unchanged: boolean
}

export interface ReportPagination {
  total: number
  items: ReportRead[]
}

export const reportApi = {
  list: (query: Query) => request<ReportPagination>(`${V1}/reports`, { query }),
  detail: (id: number) => request<ReportRead>(`${V1}/reports/${id}`),
  generate: (kind: ReportKind, period: string) =>
    request<ReportRead>(`${V1}/reports`, { method: 'POST', json: { kind, period } }),
  filePath: (id: number, fmt: ReportFormat) => `${V1}/reports/${id}/${fmt}`,
}

export const exportApi = {
  casePath: (caseId: number) => `${V1}/cases/${caseId}/export`,
  transcriptPath: (transcriptId: number) => `${V1}/transcripts/${transcriptId}/export`,
}
