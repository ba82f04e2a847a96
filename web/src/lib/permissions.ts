// The API's permission matrix (app/auth/permissions.py), mirrored to show each role only what it may use.
// The server enforces it on every route; this only hides menus and buttons.
import type { Role } from '../api/types'

export type Permission =
  | 'case:read' | 'recording:upload' | 'recording:play' | 'recording:download' | 'transcript:read' | 'search'
  | 'audit:read' | 'user:admin' | 'phone:unmasked' | 'id:unmasked' | 'case:update' | 'case:escalate'
  | 'stats:read' | 'taxonomy:admin' | 'enterprise:read' | 'enterprise:admin' | 'enterprise:rate'
  | 'warning:read' | 'warning:handle' | 'warning:admin' | 'report:read' | 'ledger:read' | 'clue:edit'
  | 'case:hold' | 'case:any'

const ALL: Permission[] = [
  'case:read', 'recording:upload', 'recording:play', 'recording:download', 'transcript:read', 'search',
  'audit:read', 'user:admin', 'phone:unmasked', 'id:unmasked', 'case:update', 'case:escalate', 'stats:read',
  'taxonomy:admin', 'enterprise:read', 'enterprise:admin', 'enterprise:rate', 'warning:read', 'warning:handle',
  'warning:admin', 'report:read', 'ledger:read', 'clue:edit', 'case:hold', 'case:any',
]

export const MATRIX: Record<Role, ReadonlySet<Permission>> = {
  agent: new Set<Permission>(['case:read', 'recording:upload', 'recording:play', 'transcript:read', 'search',
    'phone:unmasked', 'case:update', 'enterprise:read']),
  mediator: new Set<Permission>(['case:read', 'recording:upload', 'recording:play', 'recording:download',
    'transcript:read', 'search', 'phone:unmasked', 'id:unmasked', 'case:update', 'enterprise:read']),
  manager: new Set<Permission>(['case:read', 'recording:play', 'recording:download', 'transcript:read', 'search',
    'audit:read', 'case:update', 'case:any', 'case:escalate', 'case:hold', 'stats:read', 'enterprise:read',
    'enterprise:rate', 'warning:read', 'warning:handle', 'report:read', 'ledger:read', 'clue:edit']),
  admin: new Set<Permission>(ALL),
}

export const ROLE_LABELS: Record<Role, string> = {
  agent: '接线员',
  mediator: '调解员',
  manager: '管理人员',
  admin: '系统管理员',
}

export function can(role: string | undefined | null, permission: Permission): boolean {
  return !!role && role in MATRIX && MATRIX[role as Role].has(permission)
}
