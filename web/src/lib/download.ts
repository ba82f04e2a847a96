// Files from the API reach the user's disk through the page: fetched with the session's token (a plain link
// would carry none), then handed to the browser as a download. Used for recordings, ledgers, reports, exports.
import { requestBlob, type Query } from '../api/http'

/** Offer ``blob`` to the user as a download named ``filename``. */
export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = filename
  a.style.display = 'none'
  document.body.appendChild(a)
  a.click()
  a.remove()
  // the browser has taken the file once the click is handled; keep the URL a while for slow ones
  setTimeout(() => URL.revokeObjectURL(url), 30_000)
}

/** Fetch ``path`` with the token and save it under the server's name (else ``fallback``); returns the name. */
export async function downloadFile(path: string, fallback: string, query?: Query): Promise<string> {
  const { blob, filename } = await requestBlob(path, query)
  const name = filename || fallback
  saveBlob(blob, name)
  return name
}

/** A blob URL for showing a file in the page (a PDF in an <iframe>); revoke it when done. */
export async function blobUrl(path: string, type?: string): Promise<string> {
  const { blob } = await requestBlob(path)
  const typed = type && blob.type !== type ? new Blob([blob], { type }) : blob
  return URL.createObjectURL(typed)
}

/** "1.2 MB", "356 KB", "812 B". */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n) || n < 0) return '—'
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KB`
  return `${(n / 1024 / 1024).toFixed(1)} MB`
}
