// Who is logged in: the token (kept in this browser), the user, and what happens when the session ends.
import { reactive } from 'vue'
import { api } from './api'
import { ApiError, configure } from './api/http'
import type { User } from './api/types'
import { can, type Permission } from './lib/permissions'

const KEY = 'hotline.token'

export const session = reactive({
  token: localStorage.getItem(KEY) as string | null,
  user: null as User | null,
  /** why the last session ended (shown on the login page) */
  endedBecause: '' as string,
})

let expiryTimer: ReturnType<typeof setTimeout> | undefined
let onEnded: () => void = () => {}

/** Seconds since the epoch at which a JWT expires (its ``exp``), or null if it cannot be read. */
export function tokenExpiry(token: string): number | null {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
    const exp = JSON.parse(atob(payload)).exp
    return typeof exp === 'number' ? exp : null
  } catch {
    return null
  }
}

function watchExpiry(token: string): void {
  clearTimeout(expiryTimer)
  const exp = tokenExpiry(token)
  if (exp === null) return
  const ms = exp * 1000 - Date.now()
  if (ms <= 0) {
    end('登录已过期，请重新登录')
    return
  }
  expiryTimer = setTimeout(() => end('登录已过期，请重新登录'), Math.min(ms, 2 ** 31 - 1))
}

export function end(reason = ''): void {
  clearTimeout(expiryTimer)
  session.token = null
  session.user = null
  session.endedBecause = reason
  localStorage.removeItem(KEY)
  onEnded()
}

export function whenEnded(handler: () => void): void {
  onEnded = handler
}

configure({
  token: () => session.token,
  unauthorized: (e: ApiError) => end(e.code === 'not_authenticated' ? '请先登录' : '登录已过期，请重新登录'),
})

export async function login(username: string, password: string): Promise<User> {
  const { access_token } = await api.login(username, password)
  session.token = access_token
  localStorage.setItem(KEY, access_token)
  const user = await api.me()
  session.user = user
  session.endedBecause = ''
  watchExpiry(access_token)
  return user
}

/** On page load: the stored token's user, or null (the token gone or expired). */
export async function restore(): Promise<User | null> {
  if (!session.token) return null
  if (session.user) return session.user
  const exp = tokenExpiry(session.token)
  if (exp !== null && exp * 1000 <= Date.now()) {
    end('登录已过期，请重新登录')
    return null
  }
  try {
    session.user = await api.me()
    watchExpiry(session.token)
    return session.user
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null
    throw e
  }
}

export function allowed(permission: Permission): boolean {
  return can(session.user?.role, permission)
}
