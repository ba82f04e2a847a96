// The live WebSockets (calls feed, one call's transcript): JSON events in, reconnect when the server asks
// (1013) or the line drops, a clear reason when it refuses.

export interface LiveHandlers {
  event: (data: Record<string, unknown>) => void
  /** the socket closed for good: ``reason`` for people, ``normal`` when it was meant to end (1000) */
  closed?: (reason: string, normal: boolean) => void
  state?: (connected: boolean) => void
}

/** What a close code means to staff ('' when the close was normal). */
export function closeReason(code: number, reason: string): string {
  if (code === 1000) return reason || ''
  if (code === 1008) return reason ? `连接被拒绝：${reason}` : '连接被拒绝：登录已过期或没有权限'
  if (code === 1003) return reason || '请求参数有误'
  if (code === 1013) return '实时推送中断，正在重新连接…'
  if (code === 1001) return '服务器正在重启，稍后自动重连'
  return '与服务器的实时连接已断开，正在重新连接…'
}

/** Codes after which trying again helps (server asked, restarted, or the network dropped). */
export function shouldReconnect(code: number): boolean {
  return code === 1013 || code === 1001 || code === 1006 || code === 1011 || code === 1012
}

export function openLive(url: () => string, handlers: LiveHandlers, options: { reconnect?: boolean } = {}): () => void {
  let socket: WebSocket | null = null
  let stopped = false
  let attempt = 0
  let timer: ReturnType<typeof setTimeout> | undefined

  const connect = () => {
    socket = new WebSocket(url())
    socket.onopen = () => {
      attempt = 0
      handlers.state?.(true)
    }
    socket.onmessage = (m) => {
      try {
        handlers.event(JSON.parse(String(m.data)))
      } catch {
        // a frame that is not JSON is not ours: ignored
      }
    }
    socket.onclose = (e) => {
      handlers.state?.(false)
      if (stopped) return
      if (options.reconnect !== false && shouldReconnect(e.code) && attempt < 20) {
        attempt += 1
        handlers.closed?.(closeReason(e.code, e.reason), false)
        timer = setTimeout(connect, Math.min(1000 * 2 ** (attempt - 1), 15000))
        return
      }
      handlers.closed?.(closeReason(e.code, e.reason), e.code === 1000)
    }
  }
  connect()
  return () => {
    stopped = true
    clearTimeout(timer)
    socket?.close(1000)
  }
}
