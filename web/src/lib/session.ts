// When the web app renews its login token (POST /auth/refresh), and what it tells people when a session ends.
// The server ends a session that is not used for its idle timeout; the app renews only while its user is
// active (keys, clicks, scrolling, moving the pointer), so a browser left alone is logged out.

export interface RenewState {
  /** ms since the epoch */
  now: number
  /** the user's last input, ms */
  lastActivity: number
  /** when the token was issued or last renewed, ms */
  lastRenewal: number
  /** the token's ``exp`` in ms, null when unknown */
  expiresAt: number | null
  /** the server's idle timeout in seconds (0: none) */
  idleTimeoutS: number
}

export const MAX_RENEW_EVERY_MS = 5 * 60_000
export const MIN_RENEW_EVERY_MS = 30_000

/** How often an active user's token is renewed: a third of the idle timeout (so the server sees use well
 * within it), between 30 s and 5 minutes. */
export function renewEvery(idleTimeoutS: number): number {
  if (idleTimeoutS <= 0) return MAX_RENEW_EVERY_MS
  return Math.min(MAX_RENEW_EVERY_MS, Math.max(MIN_RENEW_EVERY_MS, (idleTimeoutS * 1000) / 3))
}

/** Renew now? Only if the user did something since the last renewal, and either a renewal is due or the
 * token runs out within two renewal periods. */
export function shouldRenew(s: RenewState): boolean {
  if (s.lastActivity <= s.lastRenewal) return false
  const every = renewEvery(s.idleTimeoutS)
  if (s.now - s.lastRenewal >= every) return true
  return s.expiresAt !== null && s.expiresAt - s.now <= 2 * every
}

/** What the login page says when the server refused the token (401). The server says why (logged out, idle,
 * password or role changed, account deactivated, expired); a token it cannot read is just "expired". */
export function endedMessage(code: string, message: string): string {
  if (code === 'not_authenticated') return '请先登录'
  if (/重新登录|停用/.test(message)) return message
  return '登录已过期，请重新登录'
}
