import { describe, expect, it } from 'vitest'
import { safeHighlight } from './highlight'
import { can } from './permissions'
import { toPcm16 } from './pcm'
import { aggregate, periodSeries } from './stats'
import { changedFields } from './fields'
import { closeReason, shouldReconnect } from './live'

describe('safeHighlight', () => {
  it('keeps the hit marks and escapes any other markup', () => {
    expect(safeHighlight('派到<mark>黄岛</mark>上班 &amp; 1&lt;2')).toBe('派到<mark>黄岛</mark>上班 &amp; 1&lt;2')
    expect(safeHighlight('<img src=x onerror=alert(1)><mark>x</mark>')).toBe('&lt;img src=x onerror=alert(1)&gt;<mark>x</mark>')
  })
})

describe('permissions', () => {
  it('mirrors the API matrix', () => {
    expect(can('agent', 'user:admin')).toBe(false)
    expect(can('agent', 'recording:download')).toBe(false)
    expect(can('mediator', 'recording:download')).toBe(true)
    expect(can('agent', 'case:any')).toBe(false)
    expect(can('mediator', 'case:any')).toBe(false)
    expect(can('manager', 'case:any')).toBe(true)
    expect(can('manager', 'stats:read')).toBe(true)
    expect(can('manager', 'recording:upload')).toBe(false)
    expect(can('admin', 'taxonomy:admin')).toBe(true)
    expect(can('nobody', 'case:read')).toBe(false)
    expect(can(undefined, 'case:read')).toBe(false)
  })
})

describe('toPcm16', () => {
  it('converts float samples to 16-bit little-endian PCM, averaging when downsampling', () => {
    const out = new DataView(toPcm16(new Float32Array([1, -1, 0.5, 0.5, 0, 0, 2, 2, -0.25, -0.25, 0.1, -0.1]), 48000, 16000))
    expect(out.byteLength).toBe(8)
    // groups of three: 1/6, 1/6, 1.25 (clipped to full scale), -1/12
    expect([0, 1, 2, 3].map((i) => out.getInt16(i * 2, true))).toEqual([5461, 5461, 32767, -2731])
    const same = new DataView(toPcm16(new Float32Array([1, -1, 0]), 16000, 16000))
    expect([0, 1, 2].map((i) => same.getInt16(i * 2, true))).toEqual([32767, -32768, 0])
  })
})

describe('stats', () => {
  const rows = [
    { key: '欠薪', period: '2025-02', cases: 3, workers: null, amount: null },
    { key: '工伤', period: '2025-03', cases: 1, workers: null, amount: null },
    { key: '欠薪', period: '2025-03', cases: 2, workers: null, amount: null },
    { key: null, period: '2025-03', cases: 1, workers: null, amount: null },
  ]
  it('sums rows by key, largest first', () => {
    expect(aggregate(rows)).toEqual([{ key: '欠薪', cases: 5 }, { key: '工伤', cases: 1 }, { key: '未填写', cases: 1 }])
  })
  it('turns period rows into series with zeros where a key has none', () => {
    expect(periodSeries(rows)).toEqual({ periods: ['2025-02', '2025-03'], series: [
      { name: '欠薪', data: [3, 2] }, { name: '工伤', data: [0, 1] }, { name: '未填写', data: [0, 1] }] })
  })
})

describe('changedFields', () => {
  it('sends only what changed, empty as null', () => {
    expect(changedFields({ category: '欠薪', district: null, workers: 3, summary: '' },
      { category: '欠薪', district: '黄岛区', workers: 3, summary: '' })).toEqual({ district: '黄岛区' })
    expect(changedFields({ enterprise: 'A' }, { enterprise: '' })).toEqual({ enterprise: null })
  })
})

describe('live close codes', () => {
  it('reconnects when it helps and explains refusals', () => {
    expect(shouldReconnect(1013)).toBe(true)
    expect(shouldReconnect(1006)).toBe(true)
    expect(shouldReconnect(1008)).toBe(false)
    expect(shouldReconnect(1000)).toBe(false)
    expect(closeReason(1008, '')).toBe('连接被拒绝：登录已过期或没有权限')
    expect(closeReason(1000, '通话已结束')).toBe('通话已结束')
  })
})
