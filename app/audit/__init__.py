"""The tamper-evident audit trail.

What is recorded (actor, action, subject, time, details), each in the same transaction as what it records:

- changes, with before and after: case.created/updated/transition/feedback/escalated, user.created/role_changed/
  activated/deactivated/password_reset, taxonomy.updated, lexicon.added/removed, notification.read;
- reads: case.read (with its transcript), case.listed (the ids shown), case.timeline_read, recording.read,
  call.read, call.listed, call.live_viewed, search, user.listed, stats.read, audit.read, audit.verified;
- copies of content: recording.played, recording.downloaded (committed before the first byte is sent);
- the pipeline: recording.received/duplicate, transcription.started/failed/requeued, transcript.created,
  call.started/ended;
- storage: recording.integrity_failed (a recording that failed its sha256 or decryption check: never played nor
  transcribed), storage.migrated, storage.key_rotated;
- retention and backups: recording.deleted_by_retention (sha256, size, channel, case number), retention.swept,
  backup.restored;
- access: auth.login, auth.login_failed, auth.login_throttled (each with the client address), auth.logout,
  auth.password_changed, auth.password_change_failed, auth.password_change_throttled, auth.denied (403: a role
  without the permission, HTTP or WebSocket),
  auth.token_rejected (401 for a token that was presented and refused: forged, expired, or of a deactivated
  account; a request with no token at all is only asked to log in and not recorded: browsers and probes send
  those all day and they reveal nothing).

Routes that record nothing, and why, are listed in tests/test_audit.py (NOT_AUDITED); that test calls every
route of the app and fails on one that succeeds without an event.

Tamper evidence: each event's hash covers its content and the previous event's hash; the database refuses
UPDATE, DELETE (and TRUNCATE on PostgreSQL). ``hotline audit verify`` walks the chain and names the first
edited, removed, inserted or reordered event. Events cut from the end leave a chain that still links up, and
someone with write access can recompute every hash after an edit: both are caught by comparing with a head
kept outside the database, ``SEQ:HASH`` as printed by verify: ``hotline audit verify --expect-head SEQ:HASH``,
or ``--anchor-file PATH`` (checked against its last line, then the new head appended; run it from cron and
keep the file on other storage).
"""
