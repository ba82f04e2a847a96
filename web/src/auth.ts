// Who is logged in: the token (kept in this browser), the user, renewing the token while the user is active,
// logging out, and what happens when the session ends (the server refused the token: the login page, with the
// reason, and back to the same page after logging in again).
import { reactive } from 'vue'
import { api, type TokenResponse } from './api'
import { ApiError, configure } from './api/http'
import type { User } from './api/types'
import { can, type Permission } from './lib/permissions'
import { endedMessage, shouldRenew } from './lib/session'

const KEY = 'hotline.token'
const IDLE_KEY = 'hotline.idle_timeout_s'
const ACTIVITY = ['pointerdown', 'keydown', 'wheel', 'touchstart', 'mousemove', 'scroll'] as const

export const session = reactive({
  token: localStorage.getItem(KEY) as string | null,
  user: null as User | null,
  /** why the last session ended (shown on the login page) */
  endedBecause: '' as string,
})

let expiryTimer: ReturnType<typeof setTimeout> | undefined
let renewTimer: ReturnType<typeof setInterval> | undefined
let onEnded: () => void = () => {}
let lastActivity = 0
let lastRenewal = 0
let renewing = false
let idleTimeoutS = Number(localStorage.getItem(IDLE_KEY) ?? 0) || 0

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

function noteActivity(): void {
  lastActivity = Date.now()
}

/** Keep the token: renewed now and then while the user is active (lib/session.ts says when). */
function startRenewing(): void {
  lastRenewal = Date.now()
  if (renewTimer !== undefined) return
  for (const name of ACTIVITY) window.addEventListener(name, noteActivity, { passive: true, capture: true })
  renewTimer = setInterval(() => void renewIfDue(), 15_000)
}

function stopRenewing(): void {
  clearInterval(renewTimer)
  renewTimer = undefined
  for (const name of ACTIVITY) window.removeEventListener(name, noteActivity, { capture: true })
}

async function renewIfDue(): Promise<void> {
  const token = session.token
  if (!token || renewing) return
  const exp = tokenExpiry(token)
  const state = { now: Date.now(), lastActivity, lastRenewal, expiresAt: exp === null ? null : exp * 1000, idleTimeoutS }
  if (!shouldRenew(state)) return
  renewing = true
  try {
    accept(await api.refresh())
  } catch (e) {
    // a 401 has ended the session already (configure below); anything else is tried again at the next tick
    if (!(e instanceof ApiError) || e.status !== 401) lastRenewal = Date.now() - 60_000
  } finally {
    renewing = false
  }
}

/** Take a token the server issued (login or renewal). */
function accept(response: TokenResponse): void {
  session.token = response.access_token
  localStorage.setItem(KEY, response.access_token)
  if (typeof response.idle_timeout_s === 'number') {
    idleTimeoutS = response.idle_timeout_s
    localStorage.setItem(IDLE_KEY, String(idleTimeoutS))
  }
  if (response.user) session.user = response.user
  watchExpiry(response.access_token)
  startRenewing()
}

export function end(reason = ''): void {
  clearTimeout(expiryTimer)
  stopRenewing()
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
  unauthorized: (e: ApiError) => end(endedMessage(e.code, e.message)),
})

export async function login(username: string, password: string): Promise<User> {
  const response = await api.login(username, password)
  session.token = response.access_token
  localStorage.setItem(KEY, response.access_token)
  const user = await api.me()
  session.endedBecause = ''
  accept({ ...response, user })
  noteActivity()
  return user
}

/** 退出登录: the server ends the session (its token is refused from then on), then this browser forgets it.
 * The browser logs out even when the server cannot be reached. */
export async function logout(): Promise<void> {
  if (session.token) {
    try {
      await api.logout()
    } catch {
      // already ended on the server, or the server is down: either way the token is dropped here
    }
  }
  end('您已退出登录')
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
    startRenewing()
    noteActivity()  // loading the page is using it
    return session.user
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null
    throw e
  }
}

export function allowed(permission: Permission): boolean {
  return can(session.user?.role, permission)
}
