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
    phone_unmasked = "phone:unmasked"  # callers' full numbers; without it they are shown as mask_phone()
    id_unmasked = "id:unmasked"  # full ID card numbers (身份证号) said in transcripts; else masked
    case_update = "case:update"  # confirm or change a case's fields, move it along the workflow
    case_escalate = "case:escalate"  # 督办: escalate a case, change its difficulty and deadlines
    stats_read = "stats:read"  # statistics, warnings and reports for managers
    taxonomy_admin = "taxonomy:admin"  # edit the categories and the domain lexicon


_ALL = frozenset(Permission)
MATRIX: dict[Role, frozenset[Permission]] = {
    Role.agent: frozenset(
        {Permission.case_read, Permission.recording_upload, Permission.recording_play,
         Permission.transcript_read, Permission.search, Permission.phone_unmasked, Permission.case_update}
    ),
    Role.mediator: frozenset(
        {Permission.case_read, Permission.recording_upload, Permission.recording_play,
         Permission.recording_download, Permission.transcript_read, Permission.search, Permission.phone_unmasked,
         Permission.id_unmasked, Permission.case_update}
    ),
    Role.manager: frozenset(
        {Permission.case_read, Permission.recording_play, Permission.recording_download,
         Permission.transcript_read, Permission.search, Permission.audit_read, Permission.case_update,
         Permission.case_escalate, Permission.stats_read}
    ),
    Role.admin: _ALL,
}


def allowed(role: str, permission: Permission) -> bool:
    try:
        return permission in MATRIX[Role(role)]
    except ValueError:
        return False


def mask_phone(number: str) -> str:
    """A phone number as users without ``phone:unmasked`` see it: the first 3 and the last 4 digits kept, the
    digits between them starred (13812345678 → 138****5678; other characters stay as they are). Numbers of
    up to 6 digits (extensions, 12351 itself) are not masked. China's country code stays in front of that
    (+8613812345678 → +86138****5678)."""
    for code in ("+86", "0086"):
        if number.startswith(code) and len(number) > len(code) + 6:
            return code + mask_phone(number[len(code):])
    digits = sum(c.isdigit() for c in number)
    if digits <= 6:
        return number
    out, seen = [], 0
    for c in number:
        if c.isdigit():
            seen += 1
            out.append(c if seen <= 3 or seen > digits - 4 else "*")
        else:
            out.append(c)
    return "".join(out)
