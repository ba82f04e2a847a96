// After a call or a captured session ends: wait until it is filed, transcribed and made a case.
import { api, itemsOf } from '../api'
import { request } from '../api/http'

const STATUS_TEXT: Record<string, string> = {
  queued: '录音已归档，排队等待转写…',
  processing: '正在转写录音…',
  running: '正在转写录音…',
}

export function findCaseForCall(callUuid: string, handlers: { found: (caseId: number, caseNo?: string) => void;
  progress: (text: string) => void }, options: { everyMs?: number; giveUpMs?: number } = {}): () => void {
  const every = options.everyMs ?? 3000
  const deadline = Date.now() + (options.giveUpMs ?? 20 * 60 * 1000)
  let stopped = false
  let timer: ReturnType<typeof setTimeout> | undefined

  const step = async (): Promise<boolean> => {
    const calls = await api.calls({ limit: 100 })
    const call = calls.find((c) => c.call_uuid === callUuid)
    if (!call) {
      handlers.progress('正在归档通话录音…')
      return false
    }
    if (!call.recording_id) {
      if (['no_audio', 'failed', 'cancelled'].includes(call.status)) {
        handlers.progress(call.status === 'no_audio' ? '该通话没有录到声音，未生成工单' : '该通话未能归档，未生成工单')
        return true
      }
      handlers.progress('正在归档通话录音…')
      return false
    }
    const rec = await request<{ status: string; error?: string | null }>(`/api/v1/recordings/${call.recording_id}`)
    if (rec.status === 'failed') {
      handlers.progress(`录音转写失败${rec.error ? `：${rec.error}` : ''}，请联系管理员`)
      return true
    }
    if (rec.status !== 'done') {
      handlers.progress(STATUS_TEXT[rec.status] ?? '正在转写录音…')
      return false
    }
    const cases = itemsOf((await api.cases({ recording_id: call.recording_id, limit: 1 })))
    const hit = cases.find((c) => c.recording_id === call.recording_id)
    if (hit) {
      handlers.found(hit.id, hit.case_no)
      return true
    }
    handlers.progress('转写完成，正在生成工单…')
    return false
  }

  const loop = async () => {
    if (stopped) return
    let done = false
    try {
      done = await step()
    } catch {
      handlers.progress('暂时无法查询归档进度，正在重试…')
    }
    if (stopped || done) return
    if (Date.now() > deadline) {
      handlers.progress('等待工单生成超时，请稍后在“工单”中查找')
      return
    }
    timer = setTimeout(loop, every)
  }
  void loop()
  return () => {
    stopped = true
    clearTimeout(timer)
  }
}
