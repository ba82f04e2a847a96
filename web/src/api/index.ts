import { request, requestAudio, requestBlob, type Query } from './http'
import type {
  AuditEvent, Call, CaseDetail, CaseSummary, CorrectionResult, LexiconTerm, Page, SearchResults, Stats,
  TaxonomyCategory, User,
} from './types'

const V1 = '/api/v1'

export interface TokenResponse {
  access_token: string
  /** seconds the token is valid */
  expires_in?: number
  /** seconds without use after which the server ends the session (0: never) */
  idle_timeout_s?: number
  user?: User
}

export const api = {
  login: (username: string, password: string) =>
    request<TokenResponse>(`${V1}/auth/token`, {
      method: 'POST', form: { username, password }, session: false,
    }),
  me: () => request<User>(`${V1}/auth/me`),
  /** a new token for this session (while its user is active) */
  refresh: () => request<TokenResponse>(`${V1}/auth/refresh`, { method: 'POST' }),
  /** end this session on the server: the token is refused from then on */
  logout: () => request<void>(`${V1}/auth/logout`, { method: 'POST', session: false }),

  cases: (query: Query) => request<Page<CaseSummary>>(`${V1}/cases`, { query }),
  caseDetail: (id: number) => request<CaseDetail>(`${V1}/cases/${id}`),
  updateCase: (id: number, changes: Record<string, unknown>) =>
    request<CaseDetail>(`${V1}/cases/${id}`, { method: 'PATCH', json: changes }),
  transition: (id: number, body: { to: string; unit?: string; assignee?: string; note?: string }) =>
    request<CaseDetail>(`${V1}/cases/${id}/transitions`, { method: 'POST', json: body }),
  feedback: (id: number, note: string) =>
    request<CaseDetail>(`${V1}/cases/${id}/feedback`, { method: 'POST', json: { note } }),
  escalate: (id: number, note: string) =>
    request<CaseDetail>(`${V1}/cases/${id}/escalate`, { method: 'POST', json: { note } }),
  timeline: (id: number) => request<AuditEvent[]>(`${V1}/cases/${id}/timeline`),
  /** a person's correction of one transcript segment; ``version``: the one it was made on (409 if stale) */
  correctSegment: (transcriptId: number, idx: number, body: { text: string; version: number }) =>
    request<CorrectionResult>(`${V1}/transcripts/${transcriptId}/segments/${idx}`, { method: 'PATCH', json: body }),

  search: (query: Query) => request<SearchResults>(`${V1}/search`, { query }),

  calls: (query: Query = {}) => request<Call[]>(`${V1}/calls`, { query }),

  /** the audio for the player, read range by range (as the server gives it to those who may not download) */
  audio: (recordingId: number) => requestAudio(`${V1}/recordings/${recordingId}/audio`),
  download: (recordingId: number) => requestBlob(`${V1}/recordings/${recordingId}/download`),

  stats: (query: Query) => request<Stats>(`${V1}/stats/cases`, { query }),

  users: () => request<User[] | Page<User>>(`${V1}/users`),
  createUser: (body: { username: string; password: string; role: string }) =>
    request<User>(`${V1}/users`, { method: 'POST', json: body }),
  updateUser: (id: number, body: { role?: string; active?: boolean; password?: string }) =>
    request<User>(`${V1}/users/${id}`, { method: 'PATCH', json: body }),

  taxonomy: () => request<TaxonomyCategory[] | { categories: TaxonomyCategory[] }>(`${V1}/taxonomy`),
  saveTaxonomy: (categories: TaxonomyCategory[]) =>
    request<unknown>(`${V1}/taxonomy`, { method: 'PUT', json: { categories } }),
  lexicon: () => request<LexiconTerm[] | Page<LexiconTerm>>(`${V1}/lexicon`),
  addTerm: (body: { term: string; kind: string }) =>
    request<LexiconTerm>(`${V1}/lexicon`, { method: 'POST', json: body }),
  deleteTerm: (id: number) => request<unknown>(`${V1}/lexicon/${id}`, { method: 'DELETE' }),

  notifications: () => request<unknown>(`${V1}/notifications`),
}

/** Lists come as a bare array or as a page ({items}); either way, the items. */
export function itemsOf<T>(data: T[] | { items?: T[]; categories?: T[] } | null | undefined): T[] {
  if (Array.isArray(data)) return data
  if (data && Array.isArray(data.items)) return data.items
  if (data && Array.isArray(data.categories)) return data.categories
  return []
}
