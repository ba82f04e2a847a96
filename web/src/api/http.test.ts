import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  ApiError, UNAVAILABLE, buildUrl, configure, errorFromResponse, filenameFromDisposition, messageOf, request, requestAudio,
  requestBlob, wsUrl,
} from './http'

describe('errorFromResponse', () => {
  it("keeps the server's Chinese message and code", () => {
    const e = errorFromResponse(409, { code: 'invalid_transition', detail: '工单状态不允许此操作' })
    expect(e).toMatchObject({ status: 409, code: 'invalid_transition', message: '工单状态不允许此操作' })
  })
  it('says a feature is not available when its route is missing (bare 404, 405)', () => {
    expect(errorFromResponse(404, { detail: 'Not Found' })).toMatchObject({ code: 'not_available', message: UNAVAILABLE })
    expect(errorFromResponse(405, { detail: 'Method Not Allowed' }).unavailable).toBe(true)
    expect(errorFromResponse(404, { code: 'not_found', detail: '工单不存在' })).toMatchObject({ code: 'not_found', message: '工单不存在' })
  })
  it('never shows English framework text or a stack trace', () => {
    expect(errorFromResponse(422, { detail: [{ loc: ['body', 'x'], msg: 'field required' }] }).message).toBe('提交的内容有误，请检查后重试')
    expect(errorFromResponse(403, { detail: 'Forbidden' }).message).toBe('您没有权限执行此操作')
    expect(errorFromResponse(500, 'Traceback (most recent call last)…').message).toBe('服务器内部错误，请稍后重试')
    expect(errorFromResponse(502, null).message).toBe('服务暂时不可用，请稍后重试')
    expect(errorFromResponse(418, null).message).toBe('请求失败（418）')
  })
  it('gives a generic message for anything that is not an ApiError', () => {
    expect(messageOf(new TypeError('x is undefined'))).toBe('操作失败，请稍后重试')
    expect(messageOf(new ApiError(401, 'invalid_token', '登录已过期'))).toBe('登录已过期')
  })
})

describe('urls', () => {
  it('leaves empty query values out', () => {
    expect(buildUrl('/api/v1/cases', { category: '欠薪', district: '', status: null, limit: 20 }))
      .toBe('/api/v1/cases?category=%E6%AC%A0%E8%96%AA&limit=20')
    expect(buildUrl('/x', {})).toBe('/x')
  })
  it('makes WebSocket urls on the same origin', () => {
    expect(wsUrl('/api/v1/calls/live', { token: 'a.b' }, 'https://hotline.local')).toBe('wss://hotline.local/api/v1/calls/live?token=a.b')
    expect(wsUrl('/p', { token: 't' }, 'http://127.0.0.1:8000')).toBe('ws://127.0.0.1:8000/p?token=t')
  })
})

describe('request', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('sends the bearer token and ends the session on 401', async () => {
    const ended: string[] = []
    configure({ token: () => 'tok', unauthorized: (e) => ended.push(e.code) })
    const fetchMock = vi.fn(async () => new Response(JSON.stringify({ code: 'invalid_token', detail: '登录已过期' }), { status: 401 }))
    vi.stubGlobal('fetch', fetchMock)
    await expect(request('/api/v1/auth/me')).rejects.toMatchObject({ status: 401, message: '登录已过期' })
    expect(ended).toEqual(['invalid_token'])
    const init = (fetchMock.mock.calls[0] as unknown as [string, RequestInit])[1]
    expect((init.headers as Record<string, string>).Authorization).toBe('Bearer tok')
  })

  it('does not end the session for a failed login, and maps a network failure', async () => {
    const ended: string[] = []
    configure({ token: () => 'tok', unauthorized: (e) => ended.push(e.code) })
    vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify({ code: 'bad_credentials', detail: '用户名或密码错误' }), { status: 401 })))
    await expect(request('/api/v1/auth/token', { method: 'POST', form: { username: 'a', password: 'b' }, session: false }))
      .rejects.toMatchObject({ message: '用户名或密码错误' })
    expect(ended).toEqual([])
    vi.stubGlobal('fetch', vi.fn(async () => { throw new TypeError('Failed to fetch') }))
    await expect(request('/api/v1/cases')).rejects.toMatchObject({ code: 'network', message: '无法连接服务器，请检查网络后重试' })
  })

  it('sends JSON bodies and returns the parsed answer', async () => {
    configure({ token: () => null, unauthorized: () => {} })
    const fetchMock = vi.fn(async () => new Response(JSON.stringify({ id: 3 }), { status: 200 }))
    vi.stubGlobal('fetch', fetchMock)
    expect(await request('/api/v1/cases/3', { method: 'PATCH', json: { district: '黄岛区' } })).toEqual({ id: 3 })
    const init = (fetchMock.mock.calls[0] as unknown as [string, RequestInit])[1]
    expect(init.body).toBe('{"district":"黄岛区"}')
    expect((init.headers as Record<string, string>).Authorization).toBeUndefined()
  })

  it('uploads a file as multipart, letting the browser set the boundary, and reads a 422\'s row errors', async () => {
    configure({ token: () => 'tok', unauthorized: () => {} })
    const body = { code: 'import_failed', detail: '导入失败：1 处错误，未导入任何线索', total_errors: 1,
      errors: [{ row: 3, column: '来源', message: '来源只能是…' }] }
    const fetchMock = vi.fn(async () => new Response(JSON.stringify(body), { status: 422 }))
    vi.stubGlobal('fetch', fetchMock)
    const form = new FormData()
    form.append('file', new Blob(['x']), 'clues.xlsx')
    await expect(request('/api/v1/clues/import', { method: 'POST', multipart: form }))
      .rejects.toMatchObject({ status: 422, code: 'import_failed', message: '导入失败：1 处错误，未导入任何线索', body })
    const init = (fetchMock.mock.calls[0] as unknown as [string, RequestInit])[1]
    expect(init.body).toBe(form)
    expect((init.headers as Record<string, string>)['Content-Type']).toBeUndefined()
  })
})

describe('downloads', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('take the Chinese name from RFC 5987 filename*, else the plain one', () => {
    const name = '新增欠薪线索清单（2026年3月）.xlsx'
    expect(filenameFromDisposition(`attachment; filename="ledger.xlsx"; filename*=UTF-8''${encodeURIComponent(name)}`)).toBe(name)
    expect(filenameFromDisposition(`attachment; filename*=utf-8''${encodeURIComponent('工单.pdf')}`)).toBe('工单.pdf')
    expect(filenameFromDisposition('attachment; filename="report.pdf"')).toBe('report.pdf')
    expect(filenameFromDisposition('attachment; filename=a.srt')).toBe('a.srt')
    expect(filenameFromDisposition("attachment; filename*=UTF-8''%E5%B7%A5%ZZ; filename=\"x.txt\"")).toBe('x.txt')
    expect(filenameFromDisposition('inline')).toBeNull()
    expect(filenameFromDisposition(null)).toBeNull()
  })

  it('fetch a file with the token and the query', async () => {
    configure({ token: () => 'tok', unauthorized: () => {} })
    const fetchMock = vi.fn(async () => new Response('%PDF', { status: 200, headers: {
      'Content-Disposition': `attachment; filename="case.pdf"; filename*=UTF-8''${encodeURIComponent('工单.pdf')}` } }))
    vi.stubGlobal('fetch', fetchMock)
    const got = await requestBlob('/api/v1/cases/3/export', { format: 'pdf' })
    expect(got.filename).toBe('工单.pdf')
    expect(await got.blob.text()).toBe('%PDF')
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit]
    expect(url).toBe('/api/v1/cases/3/export?format=pdf')
    expect((init.headers as Record<string, string>).Authorization).toBe('Bearer tok')
  })
})

describe('audio', () => {
  afterEach(() => vi.unstubAllGlobals())

  /** A server that answers ranges of ``whole`` at most ``chunk`` bytes at a time, as the API does for agents. */
  function rangeServer(whole: Uint8Array, chunk: number) {
    return vi.fn(async (_url: string, init: RequestInit) => {
      const asked = /bytes=(\d+)-/.exec((init.headers as Record<string, string>).Range ?? '')
      if (!asked) return new Response(JSON.stringify({ code: 'forbidden', detail: '您没有下载录音的权限' }), { status: 403 })
      const start = Number(asked[1])
      const end = Math.min(start + chunk, whole.length)
      return new Response(whole.slice(start, end), { status: 206, headers: {
        'Content-Range': `bytes ${start}-${end - 1}/${whole.length}`, 'Content-Type': 'audio/wav' } })
    })
  }

  it('is read range by range and put together, never asked for whole', async () => {
    configure({ token: () => 'tok', unauthorized: () => {} })
    const whole = Uint8Array.from({ length: 2500 }, (_, i) => i % 251)
    const fetchMock = rangeServer(whole, 1000)
    vi.stubGlobal('fetch', fetchMock)
    const { blob } = await requestAudio('/api/v1/recordings/7/audio')
    expect(new Uint8Array(await blob.arrayBuffer())).toEqual(whole)
    expect(blob.type).toBe('audio/wav')
    const asked = fetchMock.mock.calls.map((c) => ((c as unknown as [string, RequestInit])[1].headers as Record<string, string>).Range)
    expect(asked).toEqual(['bytes=0-', 'bytes=1000-', 'bytes=2000-'])
  })

  it('takes a whole file answered at once, and says when pieces do not fit', async () => {
    configure({ token: () => 'tok', unauthorized: () => {} })
    vi.stubGlobal('fetch', vi.fn(async () => new Response('RIFF', { status: 200 })))
    expect(await (await requestAudio('/a')).blob.text()).toBe('RIFF')
    vi.stubGlobal('fetch', vi.fn(async () => new Response('x', { status: 206, headers: { 'Content-Range': 'bytes 5-5/10' } })))
    await expect(requestAudio('/a')).rejects.toMatchObject({ code: 'bad_response' })
  })
})
