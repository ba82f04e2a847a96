/** Search hits come HTML-escaped with the hits in <mark>…</mark>. Before that goes into the page, any other
 * angle bracket is escaped again, so a bad or hostile answer cannot inject markup. */
export function safeHighlight(highlighted: string): string {
  return highlighted
    .split(/(<\/?mark>)/)
    .map((part) => (part === '<mark>' || part === '</mark>' ? part : part.replace(/</g, '&lt;').replace(/>/g, '&gt;')))
    .join('')
}
