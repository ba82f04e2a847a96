"""Who may do what: the one permission matrix, enforced on every route through ``require``."""

from __future__ import annotations

from enum import StrEnum

from app.users.models import Role


class Permission(StrEnum):
    case_read = "case:read"
    recording_upload = "recording:upload"
    recording_play = "recording:play"
    recording_download = "recording:download"
    transcript_read = "transcript:read"
    search = "search"
    audit_read = "audit:read"
    user_admin = "user:admin"


_ALL = frozenset(Permission)
MATRIX: dict[Role, frozenset[Permission]] = {
    Role.agent: frozenset(
        {Permission.case_read, Permission.recording_upload, Permission.recording_play,
         Permission.transcript_read, Permission.search}
    ),
    Role.mediator: frozenset(
        {Permission.case_read, Permission.recording_upload, Permission.recording_play,
         Permission.recording_download, Permission.transcript_read, Permission.search}
    ),
    Role.manager: frozenset(
        {Permission.case_read, Permission.recording_play, Permission.recording_download,
         Permission.transcript_read, Permission.search, Permission.audit_read}
    ),
    Role.admin: _ALL,
}


def allowed(role: str, permission: Permission) -> bool:
    try:
        return permission in MATRIX[Role(role)]
    except ValueError:
        return False
