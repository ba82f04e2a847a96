"""What an attacker tried on a fresh server, tried again: uploads refused before they cost disk, file names made
safe, a full disk said as 507, security headers and the API docs, WebSocket origins, file modes, staged files left
by a crash, and logs without tokens, passwords or phone numbers."""

from __future__ import annotations

import asyncio
import errno
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app import logs, startup
from app.audit.models import AuditEvent
from app.config import Settings
from app.db import Database
from app.hardening import content_security_policy
from app.jobs import JobQueue
from app.main import create_app
from app.recordings import files
from app.recordings import service as recordings
from app.recordings.models import Recording
from app.users.models import Role
from tests.conftest import CALL, PASSWORD, add_user, login
from tests.processes import ROOT, env_for, start, stop, wait_for

MB = 1024 * 1024
PHONE = "13812345678"
ID_NUMBER = "370202199001011234"


def _actions(database: Database) -> list[str]:
    with database.session() as db:
        return list(db.execute(sa.select(AuditEvent.action).order_by(AuditEvent.seq)).scalars())


def _stored(settings: Settings, database: Database) -> tuple[int, list[Path], list[Path]]:
    with database.session() as db:
        rows = db.execute(sa.select(sa.func.count()).select_from(Recording)).scalar_one()
    return (rows, [p for p in settings.recordings_dir.rglob("*") if p.is_file()],
            list((settings.data_dir / "tmp").iterdir()))


# --- uploads: refused before the body is read, counted as it streams -----------------------------------------


class Body:
    """A streamed request body of ``total`` bytes that counts how much of it the server pulled."""

    def __init__(self, head: bytes, total: int, tail: bytes = b"", chunk: int = 256 * 1024) -> None:
        self.head, self.total, self.tail, self.chunk = head, total, tail, chunk
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.pulled += len(self.head)
        yield self.head
        sent = 0
        while sent < self.total:
            piece = b"\0" * min(self.chunk, self.total - sent)
            sent += len(piece)
            self.pulled += len(piece)
            yield piece
        self.pulled += len(self.tail)
        yield self.tail


BOUNDARY = "hotline-test-boundary"


def _file_part(name: str = "call.wav", field: str = "file") -> bytes:
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()


def _post(app: object, path: str, body: Body, headers: dict[str, str], *, declare: bool = False) -> httpx.Response:
    """POST ``body`` straight into the ASGI app (the body is pulled only as the app reads it)."""
    headers = {**headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    if declare:
        headers["Content-Length"] = str(len(body.head) + body.total + len(body.tail))

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.post(path, content=body, headers=headers)

    return asyncio.run(go())


@pytest.mark.parametrize("path", ["/api/v1/recordings", "/api/v1/clues/import", "/api/v1/enterprises/import"])
def test_an_upload_without_login_is_refused_before_its_body_is_read(
    client: TestClient, settings: Settings, database: Database, path: str
) -> None:
    body = Body(_file_part(), 400 * MB, f"\r\n--{BOUNDARY}--\r\n".encode())
    r = _post(client.app, path, body, {})
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
    assert r.headers["connection"] == "close"
    assert body.pulled == 0  # not a byte of the 400 MB read, let alone written
    assert _stored(settings, database) == (0, [], [])
    bad = _post(client.app, path, Body(_file_part(), 10 * MB), {"Authorization": "Bearer forged.token.here"})
    assert bad.status_code == 401 and _actions(database)[-1] == "auth.token_rejected"  # audited as on any route


def test_an_upload_by_a_role_without_the_permission_is_refused_before_its_body_is_read(
    client: TestClient, settings: Settings, database: Database
) -> None:
    add_user(database, "wang", Role.manager)  # managers may not upload recordings
    headers = login(client, "wang")
    body = Body(_file_part(), 50 * MB)
    r = _post(client.app, "/api/v1/recordings", body, headers)
    assert r.status_code == 403 and r.json()["code"] == "forbidden" and body.pulled == 0
    assert _actions(database).count("auth.denied") == 1  # once: by the guard, the route never ran
    enterprise = _post(client.app, "/api/v1/enterprises/import", Body(_file_part("e.csv"), MB), headers)
    assert enterprise.status_code == 403  # admins only


def test_a_declared_length_over_the_limit_is_refused_at_once(
    client: TestClient, settings: Settings, database: Database, agent: dict
) -> None:
    body = Body(_file_part(), settings.max_upload_bytes + MB)
    r = _post(client.app, "/api/v1/recordings", body, agent, declare=True)
    assert r.status_code == 413 and r.json()["code"] == "too_large" and body.pulled == 0
    assert _stored(settings, database) == (0, [], [])


def test_an_undeclared_body_is_cut_off_once_past_the_limit(
    client: TestClient, settings: Settings, database: Database, agent: dict
) -> None:
    body = Body(_file_part(), 100 * MB, chunk=64 * 1024)
    r = _post(client.app, "/api/v1/recordings", body, agent)
    assert r.status_code == 413 and r.json()["code"] == "too_large"
    assert body.pulled <= settings.max_upload_bytes + 256 * 1024  # stopped right after the limit (2 MB here)
    assert _stored(settings, database) == (0, [], [])  # the staged part removed
    imports = Body(_file_part("clues.xlsx"), 30 * MB, chunk=64 * 1024)  # the clue import's limit is 20 MB
    add_user(database, "wang", Role.manager)
    r = _post(client.app, "/api/v1/clues/import", imports, login(client, "wang"))
    assert r.status_code == 413 and imports.pulled <= 20 * MB + 256 * 1024


def test_an_upload_the_client_abandons_leaves_nothing_behind(
    client: TestClient, settings: Settings, database: Database, agent: dict
) -> None:
    incoming = [{"type": "http.request", "body": _file_part(), "more_body": True},
                {"type": "http.request", "body": b"\0" * 100_000, "more_body": True}, {"type": "http.disconnect"}]
    sent: list[dict] = []

    async def receive() -> dict:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    headers = [(b"host", b"testserver"), (b"authorization", agent["Authorization"].encode()),
               (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/v1/recordings", "raw_path": b"/api/v1/recordings", "root_path": "", "query_string": b"",
             "headers": headers, "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    asyncio.run(client.app(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 400 and b"upload_interrupted" in sent[1]["body"]
    assert _stored(settings, database) == (0, [], [])


def test_an_upload_streams_into_one_staged_file_and_keeps_its_form(
    client: TestClient, settings: Settings, database: Database, agent: dict
) -> None:
    fields = "".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                     for k, v in (("channel", "来访"), ("layout", "agent-left")))
    audio = CALL.read_bytes()
    raw = fields.encode() + _file_part("../../录音\u202egpj.wav") + audio + f"\r\n--{BOUNDARY}--\r\n".encode()
    r = client.post("/api/v1/recordings", content=raw, headers={
        **agent, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert r.status_code == 201, r.text
    assert (r.json()["channel"], r.json()["layout"], r.json()["original_name"]) == ("来访", "agent-left",
                                                                                      "录音gpj.wav")
    with database.session() as db:
        rec = db.get(Recording, r.json()["id"])
        assert rec is not None and b"".join(files.read(settings, rec)) == audio
    # the form is still described for API clients (the route reads its own stream)
    admin_headers = _admin(client, database)
    schema = client.get("/api/v1/openapi.json", headers=admin_headers).json()
    form = schema["paths"]["/api/v1/recordings"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and form["properties"]["file"]["format"] == "binary"
    assert "来访" in form["properties"]["channel"]["enum"]
    missing = client.post("/api/v1/recordings", headers=agent, data={"channel": "来电"},
                          files={"other": ("x.wav", b"abc", "audio/wav")})
    assert missing.status_code == 422 and missing.json()["detail"] == "请求参数有误：file"
    garbled = client.post("/api/v1/recordings", content=b"--nope", headers={
        **agent, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert garbled.status_code == 400 and garbled.json()["code"] == "bad_form"


def _admin(client: TestClient, database: Database) -> dict[str, str]:
    add_user(database, "root", Role.admin)
    return login(client, "root")


# --- names --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sent", "kept"), [
    ("../../x.wav", "x.wav"),
    ("C:\\Users\\李\\录音 2024.wav", "录音 2024.wav"),
    ("/etc/passwd", "passwd"),
    ("..", "upload"),
    ("", "upload"),
    ("bad\x00name\r\n.wav", "badname.wav"),
    ("invoice\u202ewav.exe", "invoicewav.exe"),  # a right-to-left override that would show it as ….exe.wav
    ("  a   b\t.mp3 ", "a b.mp3"),  # a tab is a control character: gone, not a space
    ('x<>:"|?*.wav', "x_______.wav"),
    ("调解录音.wav", "调解录音.wav"),
    (".hidden.wav", "hidden.wav"),
])
def test_original_names_are_reduced_to_a_safe_base_name(sent: str, kept: str) -> None:
    assert recordings.safe_name(sent) == kept


def test_long_names_keep_their_extension() -> None:
    name = recordings.safe_name("长" * 300 + ".wav")
    assert len(name) == recordings.NAME_LIMIT and name.endswith("长.wav")


def test_an_uploaded_path_is_kept_as_its_base_name(client: TestClient, database: Database, agent: dict) -> None:
    r = client.post("/api/v1/recordings", headers=agent,
                    files={"file": ("../../etc/通话录音.wav", CALL.read_bytes(), "audio/wav")})
    assert r.status_code == 201 and r.json()["original_name"] == "通话录音.wav"
    with database.session() as db:
        received = sa.select(AuditEvent.details).where(AuditEvent.action == "recording.received")
        details = db.execute(received).scalar_one()
    assert details["original_name"] == "通话录音.wav"


# --- a full disk ----------------------------------------------------------------------------------------------


def _mount_tiny(folder: Path, size: str) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)],
                          capture_output=True)
    return done.returncode == 0


def test_a_full_staging_disk_gives_507_and_loses_nothing(
    client: TestClient, settings: Settings, database: Database, agent: dict
) -> None:
    """The data dir's tmp/ on a real 256 KiB filesystem (tmpfs; needs root and mount, else skipped: the next
    test simulates it)."""
    first = client.post("/api/v1/recordings", headers=agent, files={"file": ("a.wav", CALL.read_bytes(), "audio/wav")})
    assert first.status_code == 201
    tmp = settings.data_dir / "tmp"
    if not _mount_tiny(tmp, "256k"):
        pytest.skip("cannot mount a tmpfs here (not root, or no mount permission)")
    try:
        other = CALL.read_bytes()[:44] + bytes(reversed(CALL.read_bytes()[44:]))  # different audio, same size
        r = client.post("/api/v1/recordings", headers=agent, files={"file": ("b.wav", other, "audio/wav")})
        assert r.status_code == 507 and r.json()["code"] == "insufficient_storage"
        assert "存储空间已满" in r.json()["detail"]
        assert list(tmp.iterdir()) == []  # the partial staged file removed: the space is back
    finally:
        subprocess.run(["umount", str(tmp)], check=True)
    rows, stored, staged = _stored(settings, database)
    assert (rows, len(stored), staged) == (1, 1, [])
    with database.session() as db:  # what was on file is intact
        rec = db.get(Recording, first.json()["id"])
        assert rec is not None and b"".join(files.read(settings, rec)) == CALL.read_bytes()


@pytest.mark.parametrize("where", ["staging", "sealing", "database"])
def test_a_full_disk_anywhere_on_the_way_gives_507(
    client: TestClient, settings: Settings, database: Database, agent: dict, monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    """ENOSPC simulated (the write raises it) while staging, while sealing into the store, and SQLite's "database
    or disk is full" on the row: 507 each time, and nothing half-stored."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    full = OSError(errno.ENOSPC, "No space left on device")
    if where == "staging":
        def write(self: recordings.Stage, block: bytes) -> None:
            raise full
        monkeypatch.setattr(recordings.Stage, "write", write)
    elif where == "sealing":
        def put(*_a: object, **_k: object) -> None:
            raise full
        monkeypatch.setattr(files, "put", put)
    else:
        real_ingest = recordings.ingest

        def ingest(**kwargs: object) -> object:
            raise OperationalError("INSERT INTO recordings …", {}, sqlite3.OperationalError("database or disk is full"))
        monkeypatch.setattr(recordings, "ingest", ingest)
        assert real_ingest
    r = client.post("/api/v1/recordings", headers=agent, files={"file": ("a.wav", CALL.read_bytes(), "audio/wav")})
    assert r.status_code == 507 and r.json()["code"] == "insufficient_storage", r.text
    assert _stored(settings, database) == (0, [], [])


# --- headers, docs ------------------------------------------------------------------------------------------


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    for r in (client.get("/"), client.get("/api/v1/health"), client.get("/api/v1/cases"),
              client.post("/api/v1/recordings")):
        csp = r.headers["content-security-policy"]
        script = next(d for d in csp.split("; ") if d.startswith("script-src"))
        assert script == "script-src 'self'" and "frame-ancestors 'none'" in csp
        assert "connect-src 'self' ws://testserver wss://testserver" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in r.headers  # no TLS configured


def test_hsts_only_with_tls(settings: Settings, database: Database, queue: JobQueue, tmp_path: Path) -> None:
    tls = settings.model_copy(update={"tls_cert_file": tmp_path / "c.pem", "tls_key_file": tmp_path / "k.pem"})
    with TestClient(create_app(tls, queue=queue, database=database)) as c:
        assert c.get("/api/v1/health").headers["strict-transport-security"] == "max-age=31536000"


def test_a_host_header_cannot_inject_into_the_policy() -> None:
    assert "evil" not in content_security_policy("x; script-src evil")
    assert "ws://hotline.local:8000" in content_security_policy("hotline.local:8000")


def test_the_web_app_has_no_inline_script() -> None:
    index = ROOT / "web" / "dist" / "index.html"
    if not index.exists():
        pytest.skip("web/dist is not built (make web)")
    html = index.read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers either


def test_api_docs_are_off_unless_enabled_and_admins_get_the_schema(client: TestClient, database: Database,
                                                                     agent: dict) -> None:
    assert client.get("/docs").status_code == 404 and client.get("/openapi.json").status_code == 404
    assert client.get("/api/v1/openapi.json").status_code == 401
    assert client.get("/api/v1/openapi.json", headers=agent).status_code == 403
    schema = client.get("/api/v1/openapi.json", headers=_admin(client, database))
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "12351 Hotline"


def test_a_validation_error_does_not_echo_what_was_sent(client: TestClient, database: Database) -> None:
    secret = "Sup3r-secret-pass!"
    admin = _admin(client, database)
    r = client.post("/api/v1/users", headers=admin, json={"username": "x", "password": secret, "role": "emperor"})
    assert r.status_code == 422 and r.json()["detail"] == "请求参数有误：role" and "emperor" not in r.text
    whole = client.post("/api/v1/users", headers=admin, json=[{"username": "x", "password": secret, "id": ID_NUMBER}])
    assert whole.status_code == 422 and whole.json()["errors"][0]["type"] == "model_attributes_type"
    assert secret not in whole.text and ID_NUMBER not in whole.text  # the whole body was the error's input


# --- WebSocket origins ----------------------------------------------------------------------------------------


def _ws_close(client: TestClient, url: str, origin: str | None) -> tuple[int, str] | None:
    """How the server closed the connection right away, or None if it kept it open."""
    headers = {"origin": origin} if origin else {}
    with client.websocket_connect(url, headers=headers) as ws:
        ws.send_text("ping")  # the live feed ignores messages from the browser
        try:
            message = ws.receive()
        except WebSocketDisconnect as e:
            return e.code, e.reason
        if message["type"] == "websocket.close":
            return message["code"], message.get("reason", "")
        return None


def test_staff_websockets_refuse_pages_of_other_sites(
    client: TestClient, settings: Settings, database: Database, queue: JobQueue, agent: dict
) -> None:
    token = agent["Authorization"][7:]
    live = f"/api/v1/calls/live?token={token}"
    with client.websocket_connect(live, headers={"origin": "http://evil.example"}) as ws:
        message = ws.receive()
        assert (message["code"], message["reason"]) == (1008, "不允许从其他网站的页面连接")
    with client.websocket_connect(f"/api/v1/media/capture?token={token}&kind=visit&rate=16000",
                                  headers={"origin": "https://evil.example"}) as ws:
        assert ws.receive()["code"] == 1008
    assert _actions(database)[-2:] == ["auth.denied", "auth.denied"]
    with database.session() as db:
        last = db.execute(sa.select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).scalar_one()
    assert last.details["origin"] == "https://evil.example" and last.actor.startswith("anonymous:")
    with client.websocket_connect(live, headers={"origin": "null"}) as ws:  # a sandboxed frame or a file:// page
        assert ws.receive()["code"] == 1008
    # the site's own pages (the Host the page came from, either scheme), and connections that are not from a page
    for origin in ("http://testserver", "https://testserver", None):
        with client.websocket_connect(live, headers={"origin": origin} if origin else {}) as ws:
            ws.send_text("hello")
            ws.close()
    # HOTLINE_ALLOWED_ORIGINS: a proxy in front that changes the Host
    allowed = settings.model_copy(update={"allowed_origins": ["https://hotline.example.gov.cn"]})
    with TestClient(create_app(allowed, queue=queue, database=database)) as other, \
            other.websocket_connect(live, headers={"origin": "https://hotline.example.gov.cn:443"}) as ws:
        ws.send_text("hello")
        ws.close()


def test_media_peers_without_an_origin_still_stream(client: TestClient, settings: Settings) -> None:
    url = f"/api/v1/media/fork?token={settings.media_secret}&call_id=pbx-1&channels=1&leg=caller&rate=8000"
    with client.websocket_connect(url) as ws:
        ws.send_bytes(b"\0\0" * 160)
        ws.close()


# --- files: modes, staged leftovers ----------------------------------------------------------------------------


def test_modes_open_to_others_are_warned_about(settings: Settings, database: Database) -> None:
    settings.media_secret  # noqa: B018  # media.token, made on first use
    os.chmod(settings.data_dir, 0o700)
    for folder in (settings.recordings_dir, settings.data_dir / "tmp"):
        os.chmod(folder, 0o700)
    for path in settings.data_dir.glob("*"):
        if path.is_file():
            os.chmod(path, 0o600)
    assert startup.check_modes(settings) == []
    os.chmod(settings.data_dir, 0o755)
    os.chmod(settings.data_dir / "media.token", 0o644)
    warnings = startup.check_modes(settings)
    assert any(str(settings.data_dir) in w and "0755" in w and "chmod 700" in w for w in warnings)
    assert any("media.token" in w and "0644" in w and "chmod 600" in w for w in warnings)


def test_a_hotline_command_makes_its_files_for_its_user_only(settings: Settings, tmp_path: Path) -> None:
    fresh = settings.model_copy(update={"data_dir": tmp_path / "fresh"})
    env = env_for(fresh)
    if settings.database_url and settings.database_url.startswith("sqlite"):
        env["HOTLINE_DATABASE_URL"] = f"sqlite:///{fresh.data_dir / 'hotline.db'}"
    old = os.umask(0o022)  # a usual umask: the command sets its own
    try:
        done = subprocess.run([sys.executable, "-m", "app.cli", "users", "add", "chen", "--role", "agent",
                               "--password-stdin"], input="long-enough-pass-1\n", env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stdout + done.stderr
    assert oct(fresh.data_dir.stat().st_mode & 0o777) == "0o700"
    for path in fresh.data_dir.rglob("*"):
        assert path.stat().st_mode & 0o077 == 0, f"{path}: {oct(path.stat().st_mode)}"


def _leftovers(settings: Settings) -> dict[str, Path]:
    tmp = settings.data_dir / "tmp"
    made = {}
    for name in ("upload-1", "seal-2", "audio-3.wav", "move-4", "ledger-5.xlsx", "keep-me.txt"):
        made[name] = tmp / name
        made[name].write_bytes(b"partial")
    return made


def test_staged_files_left_by_a_crash_are_swept_when_nobody_else_works_there(settings: Settings) -> None:
    made = _leftovers(settings)
    lock = startup.DataDirLock(settings.data_dir)
    try:
        swept = startup.sweep_staging(settings, lock)
        assert swept.alone and sorted(swept.removed) == sorted(set(made) - {"keep-me.txt"})
        assert [p.name for p in (settings.data_dir / "tmp").iterdir()] == ["keep-me.txt"]
        other = startup.DataDirLock(settings.data_dir)  # the lock is held shared afterwards: others share it
        assert not other.try_exclusive()
        other.release()
    finally:
        lock.release()


def test_while_another_process_works_only_stale_staged_files_go(settings: Settings) -> None:
    made = _leftovers(settings)
    old = time.time() - startup.STALE_AFTER - 60
    os.utime(made["seal-2"], (old, old))
    working = startup.DataDirLock(settings.data_dir)  # e.g. `hotline serve` running while a worker starts
    working.shared()
    lock = startup.DataDirLock(settings.data_dir)
    try:
        swept = startup.sweep_staging(settings, lock)
        assert not swept.alone and swept.removed == ["seal-2"]
        assert made["upload-1"].exists()  # may be an upload in progress
    finally:
        lock.release()
        working.release()


# --- logs -----------------------------------------------------------------------------------------------------


def test_redact_takes_out_tokens_secrets_and_numbers() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ6aGFuZyJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    lines = [
        f'127.0.0.1:5 - "WebSocket /api/v1/calls/live?token={jwt}" [accepted]',
        f'127.0.0.1:5 - "GET /api/v1/search?q={PHONE}&limit=20 HTTP/1.1" 200',
        f"Authorization: Bearer {jwt}",
        "password=hunter2-secret&username=li",
        "{'type': 'string_too_short', 'loc': ('body', 'password'), 'msg': 'short', 'input': 'hunter2-secret'}",
        f"caller said 我的身份证是{ID_NUMBER}，电话{PHONE}",
        "input_value='hunter2-secret', input_type=str",
    ]
    out = "\n".join(logs.redact(line) for line in lines)
    for secret in (jwt, PHONE, ID_NUMBER, "hunter2-secret"):
        assert secret not in out
    assert "/api/v1/search?q=…&limit=…" in out and "138****5678" in out
    assert logs.redact("GET /api/v1/cases/12 HTTP/1.1 200") == "GET /api/v1/cases/12 HTTP/1.1 200"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_a_real_server_logs_no_token_password_or_number_and_sweeps_on_start(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    """`hotline serve` as operators run it: leftovers of a crash swept at start, no ``server`` banner, and its
    whole log (uvicorn's access and error lines included) free of the token, the password and the numbers."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    add_user(database, "zhang", Role.agent)
    left = settings.data_dir / "tmp" / "upload-crashed"
    left.write_bytes(b"partial upload")
    os.chmod(settings.data_dir, 0o755)  # opened to others by hand: warned about at start, not fatal
    port = _free_port()
    env = env_for(settings, HOTLINE_HTTP_PORT=str(port), HOTLINE_LIVE_ENABLED="false", HOTLINE_LOG_LEVEL="DEBUG")
    log = tmp_path / "serve.log"
    serve = start(["serve", "--no-worker"], env, log)
    base = f"http://127.0.0.1:{port}"
    secret = "Wr0ng-but-secret-pass"
    try:
        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/api/v1/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, 60, "the API", log)
        assert not left.exists()
        with httpx.Client(base_url=base) as c:
            health = c.get("/api/v1/health")
            assert "server" not in health.headers and "content-security-policy" in health.headers
            assert c.post("/api/v1/auth/token", data={"username": "zhang", "password": secret}).status_code == 401
            token = c.post("/api/v1/auth/token", data={"username": "zhang", "password": PASSWORD}).json()[
                "access_token"]
            c.headers["Authorization"] = f"Bearer {token}"
            assert c.get("/api/v1/search", params={"q": PHONE}).status_code == 200
            assert c.get("/api/v1/search", params={"q": ID_NUMBER}).status_code == 200
            r = c.patch("/api/v1/cases/1", json=[{"password": secret, "caller_phone": PHONE}])  # the wrong shape
            assert r.status_code == 422 and secret not in r.text
            bad = c.post("/api/v1/recordings", files={"file": ("x.wav", f"RIFF {secret}".encode(), "audio/wav")})
            assert bad.status_code == 422
        with connect(f"ws://127.0.0.1:{port}/api/v1/calls/live?token={token}") as ws:
            ws.send("hello")
        with connect(f"ws://127.0.0.1:{port}/api/v1/calls/live?token={token}",
                     additional_headers={"Origin": "http://evil.example"}) as ws, \
                pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    finally:
        assert stop(serve, signal.SIGINT) == 0
    text = log.read_text()
    assert f"数据目录 {settings.data_dir} 的权限为 0755" in text and f"chmod 700 {settings.data_dir}" in text
    assert "removed 1 staged file(s)" in text
    assert "WebSocket /api/v1/calls/live?token=…" in text  # the lines are there, without their secrets
    assert "/api/v1/search?q=…" in text
    for leaked in (token, token.split(".")[2], secret, PHONE, ID_NUMBER, PASSWORD):
        assert leaked not in text, f"{leaked!r} is in the log"


def _self_signed(folder: Path) -> tuple[Path, Path]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.mark.slow
def test_serve_speaks_https_with_hsts_when_given_a_certificate(settings: Settings, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = _free_port()
    env = env_for(settings, HOTLINE_HTTP_PORT=str(port), HOTLINE_LIVE_ENABLED="false",
                  HOTLINE_TLS_CERT_FILE=str(cert), HOTLINE_TLS_KEY_FILE=str(key))
    half = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--no-worker"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**env, "HOTLINE_TLS_KEY_FILE": ""})
    assert half.returncode == 2 and "HOTLINE_TLS_KEY_FILE" in half.stderr  # one without the other: refused
    log = tmp_path / "serve.log"
    trusted = ssl.create_default_context(cafile=str(cert))
    serve = start(["serve", "--no-worker"], env, log)
    try:
        def answered() -> httpx.Response | None:
            try:
                return httpx.get(f"https://127.0.0.1:{port}/api/v1/health", verify=trusted)
            except httpx.TransportError:
                return None

        r = wait_for(answered, 60, "the API over HTTPS", log)
        assert isinstance(r, httpx.Response) and r.status_code == 200
        assert r.headers["strict-transport-security"] == "max-age=31536000" and "server" not in r.headers
    finally:
        assert stop(serve, signal.SIGINT) == 0


# --- the web app under the policy (Chromium) ------------------------------------------------------------------


@pytest.mark.slow
def test_the_web_app_runs_under_the_policy(tmp_path: Path) -> None:
    """Log in and open each page in Chromium: no Content-Security-Policy violation, no script error."""
    from tests.web.conftest import CHROMIUM, DIST, serving
    from tests.web.conftest import login as web_login

    if not CHROMIUM.exists() or not DIST.exists():
        pytest.skip("needs /usr/bin/chromium and the built web app (web/dist)")
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with serving(tmp_path, sip=False) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        page = browser.new_context(locale="zh-CN").new_page()
        page.on("pageerror", lambda e: problems.append(f"error: {e}"))
        page.on("console", lambda m: problems.append(f"console: {m.text}") if "Content Security Policy" in m.text
                else None)
        web_login(page, server.base, "admin", server.admin_password)
        for route in ("console", "cases", "dashboard", "warnings", "warnings/rules", "enterprises", "ledgers",
                      "clues", "reports", "capture", "admin"):
            page.goto(f"{server.base}/#/{route}")
            page.wait_for_load_state("networkidle")
        clean = list(problems)
        # and the policy is on: an injected inline script is refused (and reported, so the check above can see)
        page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.pwned = 1';"
                      " document.body.appendChild(s) }")
        page.wait_for_timeout(500)
        assert page.evaluate("() => window.pwned") is None
        browser.close()
    assert clean == []
    assert len(problems) == 1 and "inline script" in problems[0], problems

