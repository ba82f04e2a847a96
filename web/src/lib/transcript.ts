// Live transcript state (partials replaced by finals) and playback sync (which segment is being heard).

export type Speaker = 'caller' | 'agent' | 'room' | string

export interface LiveEvent {
  type: string
  seq?: number
  call_id?: string
  role?: Speaker
  utterance?: number
  start?: number
  end?: number
  stable?: string
  text?: string
}

export interface LiveLine {
  key: string
  role: Speaker
  utterance: number
  start: number
  end: number
  text: string
  stable: string
  final: boolean
}

/** The lines of one call as it is spoken. A partial is provisional: a later partial of the same utterance
 * replaces it, and the final replaces it for good (later partials of a finished utterance are ignored).
 * Events replayed after a reconnect (seq already seen) change nothing. */
export class LiveTranscript {
  private byKey = new Map<string, LiveLine>()
  private lastSeq = 0
  lines: LiveLine[] = []

  apply(raw: LiveEvent | Record<string, unknown>): boolean {
    const event = raw as LiveEvent
    if (event.type !== 'partial' && event.type !== 'final') return false
    if (typeof event.text !== 'string') return false
    if (typeof event.seq === 'number') {
      if (event.seq <= this.lastSeq) return false
      this.lastSeq = event.seq
    }
    const role = event.role ?? 'room'
    const utterance = event.utterance ?? 0
    const key = `${role}:${utterance}`
    const previous = this.byKey.get(key)
    if (previous?.final) return false
    const line: LiveLine = {
      key, role, utterance,
      start: event.start ?? previous?.start ?? 0,
      end: event.end ?? previous?.end ?? 0,
      text: event.text ?? '',
      stable: event.type === 'final' ? event.text ?? '' : event.stable ?? '',
      final: event.type === 'final',
    }
    this.byKey.set(key, line)
    this.lines = [...this.byKey.values()].sort((a, b) => a.start - b.start || a.role.localeCompare(b.role))
    return true
  }

  get finals(): LiveLine[] {
    return this.lines.filter((l) => l.final)
  }

  /** The finals as segments (what a case form's evidence links can point at). */
  text(role?: Speaker): string {
    return this.finals.filter((l) => !role || l.role === role).map((l) => l.text).join('')
  }
}

export interface Timed {
  start: number
  end: number
}

/** The index of the segment being heard at ``t`` seconds (the latest-starting one that contains it when the
 * two parties overlap), or -1 between segments. ``segments`` sorted by start. */
export function activeSegment(segments: readonly Timed[], t: number): number {
  let lo = 0
  let hi = segments.length - 1
  let last = -1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (segments[mid].start <= t) {
      last = mid
      lo = mid + 1
    } else {
      hi = mid - 1
    }
  }
  for (let i = last; i >= 0; i--) {
    if (t < segments[i].end) return i
  }
  return -1
}

/** The index of the word being heard at ``t`` seconds in a segment's words ([start, end, text], in order): the
 * last one started by then, kept lit through a short gap until the next one starts; -1 before the first word
 * and once the last one has ended. */
export function activeWord(words: readonly (readonly [number, number, string, number?])[], t: number): number {
  let lo = 0
  let hi = words.length - 1
  let last = -1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (words[mid][0] <= t) {
      last = mid
      lo = mid + 1
    } else {
      hi = mid - 1
    }
  }
  if (last < 0 || (last === words.length - 1 && t >= words[last][1])) return -1
  return last
}

export const SPEAKER_LABELS: Record<string, string> = {
  caller: '来电人',
  agent: '接线员',
  room: '现场',
}

export function speakerLabel(speaker: string): string {
  if (SPEAKER_LABELS[speaker]) return SPEAKER_LABELS[speaker]
  const m = /^S(\d+)$/.exec(speaker)
  return m ? `发言人${m[1]}` : speaker
}
