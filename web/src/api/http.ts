// One way to call the API: bearer token, JSON or form bodies, and every failure turned into an ApiError
// with a message fit for staff (Chinese), never a stack trace or a raw English framework message.

export type QueryValue = string | number | boolean | null | undefined
export type Query = Record<string, QueryValue>

export class ApiError extends Error {
  readonly status: number
  readonly code: string
  /** the error response's parsed JSON (e.g. a 409's ``current``), null where there was none */
  readonly body: unknown

  constructor(status: number, code: string, message: string, body: unknown = null) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.body = body
  }

  /** The route is not on this server yet (404 from the router, 405): the feature is not available. */
  get unavailable(): boolean {
    return this.code === 'not_available'
  }
}

const GENERIC: Record<number, string> = {
  400: '请求有误，请检查后重试',
  401: '登录已过期，请重新登录',
  403: '您没有权限执行此操作',
  404: '请求的内容不存在',
  409: '操作与当前状态冲突，请刷新后重试',
  413: '文件过大，无法上传',
  422: '提交的内容有误，请检查后重试',
  429: '操作过于频繁，请稍后重试',
}
export const UNAVAILABLE = '该功能暂未开放：服务器尚未提供此接口'
const HAN = /[\u4e00-\u9fff]/

function detailOf(body: unknown): { code?: string; detail?: string } {
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>
    return {
      code: typeof b.code === 'string' ? b.code : undefined,
      detail: typeof b.detail === 'string' ? b.detail : undefined,
    }
  }
  return {}
}

/** The ApiError for an HTTP error response (``body``: its parsed JSON, or null). */
export function errorFromResponse(status: number, body: unknown): ApiError {
  const { code, detail } = detailOf(body)
  if ((status === 404 && !code) || status === 405 || status === 501) {
    // the server's own 404s carry a code (not_found …); a bare one means the route itself is missing
    return new ApiError(status, 'not_available', UNAVAILABLE)
  }
  if (status >= 500) {
    const message = status === 500 ? '服务器内部错误，请稍后重试' : '服务暂时不可用，请稍后重试'
    return new ApiError(status, code ?? 'server_error', detail && HAN.test(detail) ? detail : message)
  }
  const message = detail && HAN.test(detail) ? detail : GENERIC[status] ?? `请求失败（${status}）`
  return new ApiError(status, code ?? `http_${status}`, message, body)
}

export function networkError(): ApiError {
  return new ApiError(0, 'network', '无法连接服务器，请检查网络后重试')
}

/** A message for anything thrown: ApiErrors keep theirs, anything else gets a generic one. */
export function messageOf(e: unknown): string {
  if (e instanceof ApiError) return e.message
  return '操作失败，请稍后重试'
}

type TokenSource = () => string | null
let tokenSource: TokenSource = () => null
let onUnauthorized: (e: ApiError) => void = () => {}

export function configure(options: { token: TokenSource; unauthorized: (e: ApiError) => void }): void {
  tokenSource = options.token
  onUnauthorized = options.unauthorized
}

export function buildUrl(path: string, query?: Query): string {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v === null || v === undefined || v === '') continue
    params.append(k, String(v))
  }
  const qs = params.toString()
  return qs ? `${path}?${qs}` : path
}

export interface RequestOptions {
  method?: string
  query?: Query
  json?: unknown
  form?: Record<string, string>
  /** a multipart body (a file upload); the browser sets its Content-Type with the boundary */
  multipart?: FormData
  /** false: a 401 is the caller's to handle (the login form), not a session expiry */
  session?: boolean
  /** extra request headers (Range) */
  headers?: Record<string, string>
}

async function send(path: string, options: RequestOptions): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json', ...options.headers }
  const token = tokenSource()
  if (token) headers.Authorization = `Bearer ${token}`
  let body: BodyInit | undefined
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json'
    body = JSON.stringify(options.json)
  } else if (options.form) {
    body = new URLSearchParams(options.form)
  } else if (options.multipart) {
    body = options.multipart
  }
  let response: Response
  try {
    response = await fetch(buildUrl(path, options.query), { method: options.method ?? 'GET', headers, body })
  } catch {
    throw networkError()
  }
  if (!response.ok) {
    let parsed: unknown = null
    try {
      parsed = await response.json()
    } catch {
      parsed = null
    }
    const error = errorFromResponse(response.status, parsed)
    if (response.status === 401 && options.session !== false && token) onUnauthorized(error)
    throw error
  }
  return response
}

export async function request<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const response = await send(path, options)
  if (response.status === 204) return undefined as T
  try {
    return (await response.json()) as T
  } catch {
    throw new ApiError(response.status, 'bad_response', '服务器返回的数据无法识别')
  }
}

/** The file name a Content-Disposition header gives: the RFC 5987 ``filename*`` (UTF-8, percent-encoded:
 * how Chinese names are sent) before the plain ASCII ``filename``; null when it names none. */
export function filenameFromDisposition(disposition: string | null | undefined): string | null {
  const header = disposition ?? ''
  const star = /filename\*\s*=\s*(?:([\w-]+)'[^']*')?"?([^";]+)"?/i.exec(header)
  if (star) {
    try {
      return decodeURIComponent(star[2].trim())
    } catch {
      // a malformed encoding: fall back to the plain name
    }
  }
  const plain = /(?:^|;)\s*filename\s*=\s*(?:"([^"]*)"|([^";]+))/i.exec(header)
  const name = plain ? (plain[1] ?? plain[2] ?? '').trim() : ''
  return name || null
}

/** A file (recording audio or download) as a Blob, with the name the server gave it. */
export async function requestBlob(path: string, query?: Query): Promise<{ blob: Blob; filename: string | null }> {
  const response = await send(path, { query })
  return { blob: await response.blob(), filename: filenameFromDisposition(response.headers.get('Content-Disposition')) }
}

/** A recording's audio as one Blob, read range by range as a media player reads it. The server answers users
 * who may play but not download only in pieces (a 206 of at most 1 MiB per request; a request without Range
 * is refused them), each piece audited as played; a 200 (the whole file at once) is taken as it is. */
export async function requestAudio(path: string): Promise<{ blob: Blob; filename: string | null }> {
  const parts: ArrayBuffer[] = []
  let offset = 0
  let type = ''
  for (;;) {
    const response = await send(path, { headers: { Range: `bytes=${offset}-` } })
    if (response.status !== 206) return { blob: await response.blob(), filename: null }
    const range = /bytes\s+(\d+)-(\d+)\/(\d+)/.exec(response.headers.get('Content-Range') ?? '')
    const piece = await response.arrayBuffer()
    if (!range || Number(range[1]) !== offset || piece.byteLength === 0) {
      throw new ApiError(response.status, 'bad_response', '录音数据不完整，请重试')
    }
    type ||= response.headers.get('Content-Type') ?? ''
    parts.push(piece)
    offset = Number(range[2]) + 1
    if (offset >= Number(range[3])) return { blob: new Blob(parts, { type }), filename: null }
  }
}

/** ws(s)://host/path?token=… for the live WebSockets, relative to the page's own origin. */
export function wsUrl(path: string, query: Query, origin: string = window.location.origin): string {
  return buildUrl(origin.replace(/^http/, 'ws') + path, query)
}
