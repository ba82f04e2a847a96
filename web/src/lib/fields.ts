// The case's fields as staff see them, and the options the forms and filters offer.

export const CATEGORIES = ['欠薪', '劳动合同', '社会保险', '工伤', '工时休假', '劳务派遣', '女职工权益', '新就业形态',
  '法律咨询', '其他']
export const DISTRICTS = ['市南区', '市北区', '李沧区', '崂山区', '黄岛区', '城阳区', '即墨区', '胶州市', '平度市', '莱西市']
export const STATUSES = ['受理', '转办', '办理', '回访', '办结']
export const GENDERS = ['男', '女']
export const AGE_BRACKETS = ['18岁以下', '18-25', '26-35', '36-45', '46-55', '56-60', '60岁以上']
export const ENTERPRISE_TYPES = ['国有', '集体', '民营', '外资', '个体', '机关事业', '其他']
export const ARREARS_TYPES = ['工资', '加班费', '经济补偿', '工程款', '其他']
export const DIFFICULTIES = ['一般', '疑难', '特别复杂']

/** The editable fields, in form order: the API name and the Chinese label. */
export const CASE_FIELDS: { key: string; label: string; kind: 'text' | 'select' | 'number' | 'textarea';
  options?: string[]; allowCreate?: boolean }[] = [
  { key: 'category', label: '诉求类别', kind: 'select', options: CATEGORIES },
  { key: 'enterprise', label: '涉及企业', kind: 'text' },
  { key: 'district', label: '所属区市', kind: 'select', options: DISTRICTS, allowCreate: true },
  { key: 'occupation', label: '职业', kind: 'text' },
  { key: 'gender', label: '性别', kind: 'select', options: GENDERS },
  { key: 'age_bracket', label: '年龄段', kind: 'select', options: AGE_BRACKETS, allowCreate: true },
  { key: 'enterprise_type', label: '企业类型', kind: 'select', options: ENTERPRISE_TYPES, allowCreate: true },
  { key: 'arrears_type', label: '欠薪类别', kind: 'select', options: ARREARS_TYPES, allowCreate: true },
  { key: 'workers', label: '涉及人数', kind: 'number' },
  { key: 'amount', label: '涉及金额（元）', kind: 'number' },
  { key: 'summary', label: '诉求摘要', kind: 'textarea' },
]

/** The fields that differ between ``before`` and ``after`` (empty strings count as no value). */
export function changedFields(before: Record<string, unknown>, after: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const norm = (v: unknown) => (v === '' || v === undefined ? null : v)
  for (const { key } of CASE_FIELDS) {
    if (norm(before[key]) !== norm(after[key])) out[key] = norm(after[key])
  }
  return out
}

export const STATUS_TYPES: Record<string, 'primary' | 'success' | 'warning' | 'info' | 'danger'> = {
  受理: 'primary', 转办: 'warning', 办理: 'warning', 回访: 'info', 办结: 'success',
}

/** Next workflow steps from a status (the API decides; a refused one comes back as 409). */
export const NEXT_STEPS: Record<string, string[]> = {
  受理: ['转办', '办理', '办结'],
  转办: ['办理'],
  办理: ['回访', '办结'],
  回访: ['办结'],
  办结: [],
}

export const ACTION_LABELS: Record<string, string> = {
  'case.created': '生成工单',
  'case.read': '查看工单',
  'case.updated': '修改工单',
  'case.confirmed': '确认工单',
  'case.transition': '流转',
  'case.transitioned': '流转',
  'case.feedback': '首次反馈',
  'case.escalated': '督办',
  'recording.created': '录音入库',
  'recording.uploaded': '上传录音',
  'recording.played': '播放录音',
  'recording.downloaded': '下载录音',
  'recording.transcribed': '转写完成',
  'transcript.created': '转写完成',
  'transcript.corrected': '校对转写',
  'transcript.term_corrected': '术语纠正',
  'transcript.retranscribed': '重新转写',
  'lexicon.added': '词库新增',
}

export function fieldLabel(key: string): string {
  return CASE_FIELDS.find((f) => f.key === key)?.label ?? key
}
