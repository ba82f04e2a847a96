import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import TranscriptLines from './TranscriptLines.vue'

const lines = [
  { key: '1', speaker: 'agent', start: 0.73, text: '您好，12351热线。',
    words: [[0.94, 1.33, '您好，'], [1.67, 2.59, '12351'], [2.59, 2.95, '热线。']] as [number, number, string][] },
  { key: '2', speaker: 'caller', start: 3.45, text: '工资没发。' }, // an old segment: no words
]
const stubs = { 'el-empty': true, 'el-tag': true }

describe('TranscriptLines', () => {
  it('shows words that spell the text, the one being played lit', () => {
    const w = mount(TranscriptLines, { props: { lines, active: 0, time: 1.8 }, global: { stubs } })
    const words = w.findAll('.line')[0].findAll('.word')
    expect(words.map((s) => s.text())).toEqual(['您好，', '12351', '热线。'])
    expect(w.findAll('.line')[0].find('.text').text()).toBe('您好，12351热线。')
    expect(w.findAll('.word.current').map((s) => s.text())).toEqual(['12351'])
    expect(w.findAll('.line')[1].find('.text').text()).toBe('工资没发。')
  })

  it('lights no word outside the active line', () => {
    const w = mount(TranscriptLines, { props: { lines, active: 1, time: 3.5 }, global: { stubs } })
    expect(w.findAll('.word.current')).toHaveLength(0)
  })

  it('seeks to a clicked word, and to the line start when the line is clicked', async () => {
    const w = mount(TranscriptLines, { props: { lines, active: -1 }, global: { stubs } })
    await w.findAll('.word')[2].trigger('click')
    await w.findAll('.line')[1].trigger('click')
    expect(w.emitted('seek')).toEqual([[2.59], [3.45]])
  })
})
