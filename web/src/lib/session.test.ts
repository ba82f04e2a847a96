import { describe, expect, it } from 'vitest'
import { MAX_RENEW_EVERY_MS, MIN_RENEW_EVERY_MS, endedMessage, renewEvery, shouldRenew } from './session'

const MIN = 60_000

describe('renewEvery', () => {
  it('is a third of the idle timeout, between 30 s and 5 minutes', () => {
    expect(renewEvery(30 * 60)).toBe(MAX_RENEW_EVERY_MS)
    expect(renewEvery(6 * 60)).toBe(2 * MIN)
    expect(renewEvery(30)).toBe(MIN_RENEW_EVERY_MS)
    expect(renewEvery(0)).toBe(MAX_RENEW_EVERY_MS)
  })
})

describe('shouldRenew', () => {
  const base = { now: 100 * MIN, lastRenewal: 90 * MIN, expiresAt: 500 * MIN, idleTimeoutS: 30 * 60 }
  it('renews an active user once the period is over', () => {
    expect(shouldRenew({ ...base, lastActivity: 99 * MIN })).toBe(true)
  })
  it('never renews for a user who did nothing since the last renewal (the session may go idle)', () => {
    expect(shouldRenew({ ...base, lastActivity: 89 * MIN })).toBe(false)
    expect(shouldRenew({ ...base, lastActivity: 89 * MIN, expiresAt: base.now + MIN })).toBe(false)
  })
  it('waits for the period while the token is far from running out', () => {
    expect(shouldRenew({ ...base, lastRenewal: 98 * MIN, lastActivity: 99 * MIN })).toBe(false)
  })
  it('renews early when the token is about to run out', () => {
    expect(shouldRenew({ ...base, lastRenewal: 98 * MIN, lastActivity: 99 * MIN, expiresAt: base.now + 3 * MIN }))
      .toBe(true)
  })
})

describe('endedMessage', () => {
  it("says the server's reason when it gives one", () => {
    expect(endedMessage('invalid_token', '长时间未操作，登录已失效，请重新登录')).toBe('长时间未操作，登录已失效，请重新登录')
    expect(endedMessage('invalid_token', '已退出登录，请重新登录')).toBe('已退出登录，请重新登录')
    expect(endedMessage('invalid_token', '账号不存在或已停用')).toBe('账号不存在或已停用')
  })
  it('asks to log in, or says the login expired, otherwise', () => {
    expect(endedMessage('not_authenticated', '请先登录')).toBe('请先登录')
    expect(endedMessage('invalid_token', '无效的登录凭证')).toBe('登录已过期，请重新登录')
  })
})
