import { describe, expect, it } from 'vitest'
import { formatClock, formatOffset, parseTime, slaState } from './sla'

describe('formatClock', () => {
  it('formats seconds as a clock', () => {
    expect(formatClock(0)).toBe('00:00')
    expect(formatClock(75.9)).toBe('01:15')
    expect(formatClock(3725)).toBe('01:02:05')
    expect(formatClock(90061)).toBe('1天 01:01:01')
    expect(formatClock(-65)).toBe('01:05')
  })
})

describe('slaState', () => {
  const now = new Date('2025-03-04T08:00:00Z')
  it('counts down, warns when due soon, and counts up once overdue', () => {
    expect(slaState('2025-03-06T08:00:00Z', now)).toMatchObject({ level: 'ok', label: '剩余 2天 00:00:00' })
    expect(slaState('2025-03-04T09:30:00Z', now)).toMatchObject({ level: 'soon', label: '剩余 01:30:00' })
    expect(slaState('2025-03-04T07:59:00Z', now)).toMatchObject({ level: 'overdue', label: '已超时 01:00', seconds: -60 })
  })
  it('reads times without a zone as UTC (SQLite)', () => {
    expect(slaState('2025-03-04T09:00:00', now, { soonSeconds: 600 })).toMatchObject({ level: 'ok', seconds: 3600 })
    expect(parseTime('2025-03-04T09:00:00')).toBe(Date.parse('2025-03-04T09:00:00Z'))
    expect(parseTime('2025-03-04T09:00:00+08:00')).toBe(Date.parse('2025-03-04T01:00:00Z'))
  })
  it('says when there is no deadline, and how a closed case did', () => {
    expect(slaState(null, now).level).toBe('none')
    expect(slaState('garbage', now).level).toBe('none')
    expect(slaState('2025-03-05T00:00:00Z', now, { doneAt: '2025-03-04T10:00:00Z' }).level).toBe('done')
    expect(slaState('2025-03-04T00:00:00Z', now, { doneAt: '2025-03-04T02:00:00Z' }).label).toBe('超时 02:00:00 完成')
  })
})

describe('formatOffset', () => {
  it('gives m:ss for a second in a recording', () => {
    expect(formatOffset(0)).toBe('0:00')
    expect(formatOffset(75.6)).toBe('1:15')
    expect(formatOffset(null)).toBe('')
  })
})
