/** Microphone samples (float, -1…1, at ``inRate``) as 16-bit little-endian PCM at ``outRate`` (averaging the
 * input samples that fall in each output sample: a plain low-pass for downsampling). */
export function toPcm16(input: Float32Array, inRate: number, outRate: number): ArrayBuffer {
  const ratio = inRate / outRate
  const length = Math.floor(input.length / ratio)
  const view = new DataView(new ArrayBuffer(length * 2))
  for (let i = 0; i < length; i++) {
    const from = Math.floor(i * ratio)
    const to = Math.max(from + 1, Math.floor((i + 1) * ratio))
    let sum = 0
    for (let j = from; j < to; j++) sum += input[j]
    const v = Math.max(-1, Math.min(1, sum / (to - from)))
    view.setInt16(i * 2, v < 0 ? Math.round(v * 0x8000) : Math.round(v * 0x7fff), true)
  }
  return view.buffer
}
