import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import TranscriptLines from './TranscriptLines.vue'

const lines = [
  { key: '1', speaker: 'agent', start: 0.73, text: '您好，12351热线。',
    words: [[0.94, 1.33, '您好，'], [1.67, 2.59, '12351'], [2.59, 2.95, '热线。']] as [number, number, string][] },
  { key: '2', speaker: 'caller', start: 3.45, text: '工资没发。' }, // an old segment: no words
]
const stubs = { 'el-empty': true, 'el-tag': true, 'el-input': true }

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

describe('TranscriptLines corrections', () => {
  const input = {
    props: ['modelValue'], emits: ['update:modelValue'],
    template: '<textarea class="stub-input" :value="modelValue" @input="$emit(\'update:modelValue\', $event.target.value)" />',
    methods: { focus() {} },
  }
  const editStubs = { ...stubs, 'el-input': input, 'el-tag': { template: '<span class="tag"><slot /></span>' } }
  const editable = [
    { key: '1', speaker: 'caller', start: 5, text: '青岛连川公司', editedBy: null,
      words: [[5, 6, '青岛'], [6, 7, '连川', 0.3], [7, 8, '公司', 0.9]] as [number, number, string, number?][] },
    { key: '2', speaker: 'agent', start: 9, text: '好的。', editedBy: 'zhang' },
  ]

  it('marks words the decoder was unsure of, and lines people corrected', () => {
    const w = mount(TranscriptLines, { props: { lines: editable }, global: { stubs: editStubs } })
    const unsure = w.findAll('.word.uncertain')
    expect(unsure.map((s) => s.text())).toEqual(['连川'])
    expect(unsure[0].attributes('title')).toBe('识别不确定，建议复听')
    expect(w.findAll('[data-test="line-edited"]').map((s) => s.attributes('title'))).toEqual(['由 zhang 校对'])
    expect(w.findAll('[data-test="line-edit"]')).toHaveLength(0) // nothing editable without a save function
  })

  it('edits on double-click: Enter saves, the editor closes once saved; Esc cancels', async () => {
    const saved: [number, string][] = []
    const save = async (i: number, text: string) => { saved.push([i, text]); return true }
    const w = mount(TranscriptLines, { props: { lines: editable, save }, global: { stubs: editStubs } })
    await w.findAll('.line')[0].trigger('dblclick')
    expect(w.emitted('editing')).toEqual([[0]])
    const box = w.find('textarea')
    expect((box.element as HTMLTextAreaElement).value).toBe('青岛连川公司')
    await box.setValue('青岛联创公司')
    await box.trigger('keydown', { key: 'Enter' })
    await new Promise((r) => setTimeout(r))
    expect(saved).toEqual([[0, '青岛联创公司']])
    expect(w.find('textarea').exists()).toBe(false)

    await w.findAll('.line')[1].trigger('keydown', { key: 'e' })
    expect(w.find('textarea').exists()).toBe(true)
    await w.find('textarea').trigger('keydown', { key: 'Escape' })
    expect(w.find('textarea').exists()).toBe(false)
    expect(saved).toHaveLength(1)
  })

  it('keeps the editor and the text when the save fails, and refuses an empty text', async () => {
    let calls = 0
    const save = async () => { calls++; return false }
    const w = mount(TranscriptLines, { props: { lines: editable, save }, global: { stubs: editStubs } })
    await w.findAll('[data-test="line-edit"]')[0].trigger('click')
    await w.find('textarea').setValue('  ')
    await w.find('textarea').trigger('keydown', { key: 'Enter' })
    expect(calls).toBe(0)
    expect(w.find('[data-test="line-problem"]').text()).toBe('校对内容不能为空')
    await w.find('textarea').setValue('青岛联创公司')
    await w.find('textarea').trigger('keydown', { key: 'Enter' })
    await new Promise((r) => setTimeout(r))
    expect(calls).toBe(1)
    expect((w.find('textarea').element as HTMLTextAreaElement).value).toBe('青岛联创公司')
  })
})
