"""`hotline`: the one command for running, importing, transcribing, users, audit and benchmarks."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from app.config import Settings
from app.db import Database
from app.recordings.models import CaseChannel
from app.supervisor import ChildSpec, Supervisor
from app.users.models import Role
from asr.types import Layout

app = typer.Typer(help="12351 职工服务热线平台：通话录音 → 转写 → 工单 → 检索 → 审计。", no_args_is_help=True,
                  add_completion=False)
users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
audit_app = typer.Typer(help="Check the tamper-evident audit trail.", no_args_is_help=True)
bench_app = typer.Typer(help="Measure performance; each prints its figures.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
app.add_typer(bench_app, name="bench")
asr_app = typer.Typer(help="Speech-recognition models.", no_args_is_help=True)
app.add_typer(asr_app, name="asr")
sla_app = typer.Typer(help="Case SLA clocks and reminders.", no_args_is_help=True)
app.add_typer(sla_app, name="sla")
cases_app = typer.Typer(help="Cases (工单): process existing ones again.", no_args_is_help=True)
app.add_typer(cases_app, name="cases")
warnings_app = typer.Typer(help="Early warnings (预警): evaluate the cases, escalate what nobody signed for.",
                           no_args_is_help=True)
app.add_typer(warnings_app, name="warnings")
enterprises_app = typer.Typer(help="The enterprise registry (企业库): import, list, integrity colours.",
                              no_args_is_help=True)
app.add_typer(enterprises_app, name="enterprises")
ledger_app = typer.Typer(help="Ledgers (台账): arrears clues, new and closed; the 舆情 verification list.",
                         no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
report_app = typer.Typer(help="Reports (报告): the monthly analysis and the daily enterprise-warning report.",
                         no_args_is_help=True)
app.add_typer(report_app, name="report")
search_app = typer.Typer(help="The search index.", no_args_is_help=True)
app.add_typer(search_app, name="search")
storage_app = typer.Typer(help="Recordings storage: move to S3, check every recording, rotate the master key.",
                          no_args_is_help=True)
app.add_typer(storage_app, name="storage")
retention_app = typer.Typer(help="Retention (保存期限): delete recordings past their channel's period, legal holds "
                                 "kept.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")
err = Console(stderr=True)

LayoutOpt = Annotated[Layout | None, typer.Option(
    help="Stereo layout: caller-left (default: HOTLINE_DEFAULT_LAYOUT), agent-left, or mono (one speaker).")]


def _setup_logging() -> None:
    """Every line through one handler that keeps tokens, passwords and personal numbers out (app/logs.py)."""
    from app import logs

    logs.setup()


_held: list[object] = []  # the data dir's lock, held for the life of a long-running command


def _start(settings: Settings) -> None:
    """Start-up of a long-running command (serve, worker, sip, live): the data dir locked (shared) for the
    process's life, staged files left by a crash removed, files readable by others warned about (app/startup.py)."""
    from app import startup

    _held.append(startup.prepare(settings, sweep=True))


@contextmanager
def _database(settings: Settings) -> Iterator[Database]:
    """The database, migrated to the newest schema; its connections are closed when the command ends. The data
    dir is locked (shared) meanwhile, so that a process starting then leaves this one's staged files alone."""
    from app.startup import DataDirLock

    settings.ensure_dirs()
    db = Database(settings.sqlalchemy_url)
    try:
        with DataDirLock(settings.data_dir):
            db.upgrade()
            yield db
    finally:
        db.dispose()


def _prepare_storage(settings: Settings) -> None:
    """Before taking work: the recordings store reachable (an S3 bucket made if missing, with object lock when
    HOTLINE_S3_OBJECT_LOCK_DAYS is set) and the master key loaded (generated on first start when none is
    configured). A store that is down is reported and the process carries on: uploads get 503 and jobs wait
    until it is back."""
    from app.recordings import crypto, files, storage

    try:
        if settings.encrypt_recordings:
            generated = not settings.master_key and not settings.master_key_file and \
                not (settings.data_dir / "master.key").exists()
            files.keyring(settings)
            if generated:
                err.print(f"[yellow]录音加密主密钥已生成：{settings.data_dir / 'master.key'}。请另行妥善备份"
                          f"（与数据目录分开保存）：丢失它，所有录音都无法解密。[/]")
        store = files.store(settings, files.location(settings))
        storage.ensure_bucket(store, object_lock=settings.s3_object_lock_days > 0)
    except storage.StorageUnavailable as e:
        err.print(f"[yellow]{e}[/]")
    except (storage.StorageError, crypto.CryptoError) as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from e


def _bootstrap_admin(settings: Settings, database: Database) -> None:
    """First start: with no users at all, create `admin` with a random password, shown once."""
    from app.users import service as users

    with database.session() as db:
        if users.count(db=db):
            return
        password = secrets.token_urlsafe(12)
        users.create(db=db, username="admin", role=Role.admin, password=password, actor="system")
    path = settings.data_dir / "initial-admin-password.txt"
    path.write_text(password + "\n")
    path.chmod(0o600)
    # the password goes to the file only (mode 0600), never to the console: that output ends up in logs/journals
    err.print(f"[bold]First start: created user [cyan]admin[/]; its password is in {path} (readable by this "
              f"user only). Add staff with `hotline users add`.[/]")


@app.command()
def serve(
    workers: Annotated[int, typer.Option(help="Transcription worker threads (0: none, e.g. when "
                                              "`hotline worker` runs elsewhere)")] = -1,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="API only: no transcription worker here "
                                                                 "(same as --workers 0)")] = False,
) -> None:
    """Start everything on this machine: API and web on HOTLINE_HTTP_PORT, and the transcription worker.

    A child that dies (worker, SIP adapter, live transcription) is started again, after 1 s, then twice as
    long each time it dies again quickly (up to 60 s). Ctrl-C (or SIGTERM) stops all of it."""
    import uvicorn

    from app.main import create_app

    _setup_logging()
    settings = Settings()
    cert, key = _tls_files(settings)
    _start(settings)
    _prepare_storage(settings)
    with _database(settings) as database:
        _bootstrap_admin(settings, database)
        _recover_media_streams(settings, database)
        _mark_search_numbers(settings, database)
    n = 0 if no_worker else settings.worker_concurrency if workers < 0 else workers
    supervisor = Supervisor(_children(settings, n))
    app_ = create_app(settings)
    app_.state.supervisor = supervisor  # GET /api/v1/health reports each child
    # uvicorn stops on SIGINT/SIGTERM, then raises the signal again: KeyboardInterrupt, or _Stopped here (not the
    # default action, which would end this process before its children are stopped)
    signal.signal(signal.SIGTERM, _stopped)
    supervisor.start()
    try:
        # log_config=None: uvicorn's access and error logs go through our handler (app/logs.py: no tokens from
        # WebSocket URLs, no search terms); no `server` banner; HTTPS when HOTLINE_TLS_CERT_FILE/_KEY_FILE are set
        config = uvicorn.Config(app_, host=settings.http_host, port=settings.http_port, log_level="info",
                                log_config=None, server_header=False, ssl_certfile=cert, ssl_keyfile=key)
        server = _server(config, supervisor)
        with contextlib.suppress(KeyboardInterrupt, _Stopped):
            server.run()
        if not server.started and not supervisor.stopping:  # e.g. the port is taken (as uvicorn.run does)
            raise typer.Exit(3)
    finally:
        signal.signal(signal.SIGTERM, lambda *_: None)  # a second one while the children are being stopped
        supervisor.stop(timeout=15)


class _Stopped(Exception):
    pass


def _stopped(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


def _server(config: Any, supervisor: Supervisor) -> Any:
    """uvicorn's server, which also stops the children's restarts the moment SIGINT/SIGTERM arrives (a Ctrl-C
    reaches the children too: their exit then is not a crash)."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            supervisor.halt()
            super().handle_exit(sig, frame)

    return Server(config)


def _children(settings: Settings, worker_threads: int) -> list[ChildSpec]:
    """What `hotline serve` runs beside the API, each kept running (app/supervisor.py)."""
    parent = ["--parent-pid", str(os.getpid())]
    cli = [sys.executable, "-m", "app.cli"]
    children = []
    if worker_threads > 0:
        children.append(ChildSpec("worker", [*cli, "worker", "--concurrency", str(worker_threads), *parent]))
    if settings.sip_enabled:  # `hotline sip` starts `hotline live` itself
        children.append(ChildSpec("sip", [*cli, "sip", *parent]))
    elif settings.live_enabled:  # WebSocket media and browser capture only: they are transcribed live too
        children.append(ChildSpec("live", [*cli, "live", *parent]))
    return children


def _tls_files(settings: Settings) -> tuple[str | None, str | None]:
    """uvicorn's ssl_certfile/ssl_keyfile from HOTLINE_TLS_CERT_FILE/_KEY_FILE: both or neither, and readable."""
    cert, key = settings.tls_cert_file, settings.tls_key_file
    if cert is None and key is None:
        return None, None
    if cert is None or key is None:
        err.print("[red]HTTPS needs both HOTLINE_TLS_CERT_FILE and HOTLINE_TLS_KEY_FILE (PEM files)[/]")
        raise typer.Exit(2)
    for path in (cert, key):
        if not path.is_file() or not os.access(path, os.R_OK):
            err.print(f"[red]TLS file {path} does not exist or cannot be read[/]")
            raise typer.Exit(2)
    return str(cert), str(key)


def _mark_search_numbers(settings: Settings, database: Database) -> None:
    """Once per data dir after upgrading: cases indexed before phone and ID numbers were marked in the search
    index are indexed again, so nobody matches digits they see masked (idempotent; `hotline search
    mark-numbers` does the same by hand, e.g. once for a multi-node site)."""
    from app.search import service as search

    done = settings.data_dir / ".search-numbers-marked"
    if done.exists():
        return
    with database.session() as db:
        if n := search.mark_numbers(db=db):
            err.print(f"[yellow]检索索引：{n} 个工单中的电话/身份证号已重新标记[/]")
    done.touch()


def _recover_media_streams(settings: Settings, database: Database) -> None:
    """File WebSocket-streamed calls and sessions cut off when the previous API process died."""
    from app.calls.flows import Filer, recover
    from app.jobs import JobQueue

    if n := recover(Filer(settings, database, JobQueue(settings, database=database)), settings.calls_dir / "ws"):
        err.print(f"[yellow]{n} call(s)/session(s) cut off by the previous run were filed[/]")


def _exit_with_parent(parent_pid: int) -> None:
    """Stop this child if the `hotline serve` that started it is gone (even after a kill -9)."""
    while True:
        time.sleep(1)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def _preload_model(settings: Settings) -> None:
    """Load and warm the Whisper model before taking jobs, so the first call is as fast as the rest; a missing
    model is reported now, clearly, rather than on every job."""
    from app.transcripts.flows import asr_options
    from asr.models import ModelError
    from asr.worker import warm_up

    try:
        warm_up(asr_options(settings, settings.default_layout), settings.models_dir)
        if settings.diarization_dir:  # a broken pyannote directory is reported now, not at the first session
            from asr.diarize_pyannote import load_pipeline

            load_pipeline(settings.diarization_dir)
    except ModelError as e:
        logging.getLogger("hotline.worker").error("%s", e)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Jobs processed at once (each loads the model)")] = 0,
    parent_pid: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Run the transcription worker. With HOTLINE_REDIS_URL set, run it on as many machines as you like."""
    from app.jobs import JobQueue

    _setup_logging()
    settings = Settings()
    _start(settings)
    _prepare_storage(settings)
    with _database(settings) as database:
        queue = JobQueue(settings, database=database)
        _preload_model(settings)
        with database.session() as db:  # the registry's index is built before the first call needs it
            from app.enterprises import service as enterprises

            enterprises.resolver(db=db)
        if parent_pid:
            threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
        queue.run_worker(workers=concurrency or settings.worker_concurrency)


@app.command()
def sip(parent_pid: Annotated[int | None, typer.Option(hidden=True)] = None) -> None:
    """Run the telephony adapter: SIP/SIPREC on HOTLINE_SIP_HOST:HOTLINE_SIP_PORT (UDP and TCP), RTP in a
    media process, every call recorded and filed as a case. `hotline serve` starts it for you."""
    import asyncio

    from app.calls import adapter

    _setup_logging()
    settings = Settings()
    _start(settings)
    _prepare_storage(settings)
    with _database(settings) as database:
        if parent_pid:
            threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
        try:
            asyncio.run(adapter.run(settings, database))
        except OSError as e:
            err.print(f"[red]SIP adapter cannot start on {settings.sip_host}:{settings.sip_port}: {e}[/]")
            raise typer.Exit(2) from e


@app.command()
def live(parent_pid: Annotated[int | None, typer.Option(hidden=True)] = None) -> None:
    """Transcribe calls in progress for the staff on them (started by `hotline sip`, or by `hotline serve`
    when SIP is off; needs the API for delivery: the same data dir, or HOTLINE_REDIS_URL)."""
    from app.calls import live_worker

    _setup_logging()
    settings = Settings()
    _start(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with _database(settings) as database:
        if parent_pid:
            threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        live_worker.serve(settings, database, stop)


@app.command("import")
def import_(
    paths: Annotated[list[Path], typer.Argument(help="Audio files (stereo calls: left = caller, right = agent)",
                                                exists=True, dir_okay=False, readable=True)],
    layout: LayoutOpt = None,
    channel: Annotated[CaseChannel, typer.Option(help="来电/来访/调解/开庭/上传")] = CaseChannel.upload,
    wait: Annotated[bool, typer.Option(help="Wait until each becomes a case (needs a running worker)")] = False,
) -> None:
    """Put recordings on file and queue them for transcription (the same audio twice is stored once)."""
    settings = Settings()
    with _database(settings) as database:
        failed = _import_files(settings, database, paths, layout or settings.default_layout, channel, wait)
    raise typer.Exit(1 if failed else 0)


def _import_files(settings: Settings, database: Database, paths: list[Path], layout: Layout,
                  channel: CaseChannel, wait: bool) -> int:
    """Import each file with a progress bar; returns how many failed."""
    from app.jobs import JobQueue
    from app.recordings import service as recordings
    from asr.audio import AudioError

    queue = JobQueue(settings, database=database)
    failed = 0
    ids: list[int] = []
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn())
    with Progress(*columns, console=err) as progress:
        task = progress.add_task("导入录音", total=len(paths))
        for path in paths:
            progress.update(task, description=f"导入 {path.name}")
            try:
                with path.open("rb") as f, recordings.staged(settings, f) as staged:
                    result = recordings.ingest(
                        database=database, settings=settings, staged_file=staged, original_name=path.name,
                        layout=layout, channel=channel, actor="cli")
            except (AudioError, recordings.UploadTooLarge) as e:
                failed += 1
                progress.console.print(f"[red]✗ {path}: {e}[/]")
            else:
                rec = result.recording
                if not result.duplicate:
                    queue.enqueue_transcription(rec.id)
                ids.append(rec.id)
                note = "已存在，未重复导入" if result.duplicate else "已排队转写"
                progress.console.print(f"✓ {path.name}: 录音 #{rec.id}，{rec.duration:.1f} 秒，{note}")
            progress.advance(task)
    if wait and ids:
        _wait_for_cases(database, ids)
    return failed


def _wait_for_cases(database: Database, recording_ids: list[int]) -> None:
    import sqlalchemy as sa

    from app.cases.models import Case
    from app.recordings.models import JobStatus, Recording

    pending = set(recording_ids)
    err.print("等待转写完成（需要运行中的 `hotline serve` 或 `hotline worker`；Ctrl-C 停止等待，不影响转写）…")
    while pending:
        with database.session() as db:
            rows = db.execute(sa.select(Recording.id, Recording.status, Recording.error, Case.case_no)
                              .outerjoin(Case, Case.recording_id == Recording.id)
                              .where(Recording.id.in_(pending))).all()
        for rid, status, error, case_no in rows:
            if status == JobStatus.done:
                err.print(f"录音 #{rid} → 工单 {case_no}")
                pending.discard(rid)
            elif status == JobStatus.failed:
                err.print(f"[red]录音 #{rid} 转写失败：{error}[/]")
                pending.discard(rid)
        time.sleep(0.5)


@app.command()
def transcribe(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    layout: LayoutOpt = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print JSON: {duration, segments:[{start,end,speaker,text,words}]}")]
    = False,
) -> None:
    """Transcribe one file with the real model and print it (nothing is stored)."""
    from app.transcripts.flows import asr_options
    from asr.audio import AudioError, probe
    from asr.models import ModelError
    from asr.worker import transcribe_file

    settings = Settings()
    settings.ensure_dirs()
    try:
        info = probe(path)
        chosen: str = layout or settings.default_layout
        result = transcribe_file(path, asr_options(settings, "mono" if info.channels == 1 else chosen),
                                 settings.models_dir)
    except (AudioError, ModelError) as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from e
    if as_json:
        doc = {"duration": result.duration, "language": result.language, "engine": result.engine,
               "model": result.model, "processing_s": result.processing_s,
               "segments": [{"start": s.start, "end": s.end, "speaker": s.speaker, "text": s.text,
                             "words": [[w.start, w.end, w.text, w.probability] for w in s.words]}
                            for s in result.segments]}
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=1))
        return
    for s in result.segments:
        typer.echo(f"[{s.start:7.2f}–{s.end:7.2f}] {s.speaker:>7}: {s.text}")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Login name")],
    role: Annotated[Role, typer.Option(help="agent 接线员 / mediator 调解员 / manager 管理人员 / admin")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
) -> None:
    """Add a user account."""
    from app.users import service as users

    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt(
        "Password", hide_input=True, confirmation_prompt=True)
    try:
        with _database(Settings()) as database, database.session() as db:
            users.create(db=db, username=name, role=role, password=password, actor="cli")
    except users.UserError as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(1) from e
    err.print(f"用户 {name}（{role.value}）已创建")


@audit_app.command("verify")
def audit_verify(
    expect_head: Annotated[str | None, typer.Option(
        help="SEQ:HASH printed by an earlier verify: the chain must still reach it (catches a cut-back tail)")] = None,
    anchor_file: Annotated[Path | None, typer.Option(
        help="Keep anchors here (outside the database): check against its last line, then append the new head")]
        = None,
) -> None:
    """Walk the audit hash chain; exit 1 naming the first event that was edited, removed, inserted or moved."""
    from datetime import UTC, datetime

    from app.audit import service as audit

    try:
        anchors = [audit.Anchor.parse(expect_head)] if expect_head else []
        if anchor_file and anchor_file.exists():
            lines = [ln for ln in anchor_file.read_text().splitlines() if ln.strip()]
            anchors += [audit.Anchor.parse(lines[-1].split()[0])] if lines else []
    except audit.AnchorError as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from e
    with _database(Settings()) as database, database.session() as db:
        results = [audit.verify(db=db, expect=a) for a in anchors] or [audit.verify(db=db)]
    bad = next((r for r in results if not r.ok), None)
    if bad is None:
        r = results[0]
        typer.echo(f"OK: {r.events} audit events, chain intact; head {r.head}")
        if anchor_file:
            with anchor_file.open("a") as f:
                f.write(f"{r.head} {datetime.now(UTC).isoformat(timespec='seconds')}\n")
        return
    typer.echo(f"TAMPERED: event seq={bad.first_bad_seq} (id={bad.first_bad_id}): {bad.reason}; "
               f"intact up to {bad.head}", err=True)
    raise typer.Exit(1)


@sla_app.command("sweep")
def sla_sweep() -> None:
    """Make the SLA reminders that are due now (once per case and kind) and send them to
    HOTLINE_SLA_WEBHOOK_URL if set. The worker does this every minute; safe to run any time."""
    from app.notifications import service as notifications

    _setup_logging()
    settings = Settings()
    with _database(settings) as database:
        report = notifications.run_sweep(database=database, settings=settings)
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(report.sweep.created.items())) or "none due"
    typer.echo(f"notifications: {report.sweep.total} ({kinds}); clocks started on {report.sweep.clocks_started} "
               "case(s)")
    if report.delivery is not None:
        typer.echo(f"webhook: {report.delivery.delivered} delivered, {report.delivery.failed} failed "
                   "(retried at the next sweep)")


@warnings_app.command("evaluate")
def warnings_evaluate() -> None:
    """Replay every case through the active warning rules (after the rules changed). Idempotent: warnings
    already raised take the cases they cover, nothing is raised twice."""
    from app.warnings import service as warnings

    _setup_logging()
    settings = Settings()
    with _database(settings) as database, database.session() as db:
        result = warnings.evaluate_all(db=db, settings=settings, actor="cli")
    typer.echo(f"cases {result.cases}: raised {result.raised}, upgraded {result.upgraded}, "
               f"cases attached {result.attached} in {result.seconds:.2f} s")


@warnings_app.command("sweep")
def warnings_sweep() -> None:
    """Escalate warnings nobody signed for by their deadline and end snoozes that ran out (the worker does this
    every minute)."""
    from app.warnings import workflow

    _setup_logging()
    settings = Settings()
    with _database(settings) as database, database.session() as db:
        result = workflow.sweep(db=db, settings=settings)
    typer.echo(f"escalated {result.escalated}, woken {result.woken}")


@cases_app.command("refresh")
def cases_refresh(
    since: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"],
                                                   help="Only cases created on or after this day (Beijing)")] = None,
    retranscribe: Annotated[bool, typer.Option(help="Transcribe each recording again first; segments a person "
                                                    "edited are kept")] = False,
) -> None:
    """Process existing cases again with what the site knows now (lexicon, enterprises on file): term
    correction of transcript segments nobody edited, then the suggested fields, applied only to fields nobody
    set or confirmed. Every change is audited with actor `refresh`."""
    from collections import Counter

    from app.cases import service as cases
    from app.transcripts import flows
    from asr.audio import AudioError
    from asr.models import ModelError

    _setup_logging()
    settings = Settings()
    fields: Counter[str] = Counter()
    seen = changed_cases = terms = failed = 0
    removed = kept = added = 0
    with _database(settings) as database:
        with database.session() as db:
            ids = cases.ids_since(db=db, since=since.date() if since else None)
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeElapsedColumn())
        with Progress(*columns, console=err) as progress:
            task = progress.add_task("重新处理工单", total=len(ids))
            for case_id in ids:
                try:
                    done = flows.refresh_case(database=database, settings=settings, case_id=case_id,
                                              actor="refresh", retranscribe=retranscribe)
                except (ValueError, AudioError, ModelError) as e:
                    failed += 1
                    progress.console.print(f"[red]✗ 工单 #{case_id}：{e}[/]")
                    progress.advance(task)
                    continue
                seen += 1
                progress.update(task, description=f"重新处理 {done.case_no}")
                fields.update(done.changed_fields)
                changed_cases += bool(done.changed_fields)
                terms += done.terms_corrected
                if done.replaced:
                    removed, kept, added = (removed + done.replaced.removed, kept + done.replaced.kept,
                                            added + done.replaced.added)
                if done.skipped:
                    progress.console.print(f"[yellow]工单 {done.case_no} 未重新转写：{done.skipped}[/]")
                if done.changed_fields:
                    progress.console.print(f"{done.case_no}：{'、'.join(done.changed_fields)}")
                progress.advance(task)
    summary = {"cases_seen": seen, "cases_changed": changed_cases, "fields_changed": sum(fields.values()),
               "by_field": dict(fields), "segments_term_corrected": terms, "failed": failed}
    if retranscribe:
        summary |= {"segments_removed": removed, "segments_kept_edited": kept, "segments_added": added}
    typer.echo(f"工单 {seen} 件，其中 {changed_cases} 件有字段更新，共更新字段 {summary['fields_changed']} 个"
               f"（{'、'.join(f'{k} {v}' for k, v in fields.most_common()) or '无'}）；"
               f"术语纠正 {terms} 段" + (f"；重新转写：替换 {removed} 段，保留人工校对 {kept} 段，新增 {added} 段"
                                      if retranscribe else "") + (f"；失败 {failed} 件" if failed else ""))
    typer.echo(json.dumps(summary, ensure_ascii=False))
    raise typer.Exit(1 if failed else 0)


@asr_app.command("export-openai")
def asr_export_openai(
    out: Annotated[Path | None, typer.Option(help="Checkpoint path (default: in the model cache, where the "
                                                  "openai-whisper engine looks)")] = None,
) -> None:
    """Convert the configured CTranslate2 Whisper weights (default: the bundled base) into an openai-whisper
    checkpoint, so both engines run the same weights."""
    from asr.export import ExportError, export_openai
    from asr.models import ModelError, resolve_model_dir

    settings = Settings()
    settings.ensure_dirs()
    try:
        model_dir = resolve_model_dir(settings.asr_model_dir, settings.models_dir)
        path = export_openai(model_dir, out or settings.models_dir / f"{model_dir.name}-openai.pt")
    except (ModelError, ExportError, ImportError) as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from e
    typer.echo(f"{path} ({path.stat().st_size / 2**20:.0f} MiB), from {model_dir}")


@bench_app.command("spine")
def bench_spine(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A call recording, e.g. a 40 s call")],
    query: Annotated[str, typer.Option(help="A word said in the call to search for")],
) -> None:
    """Start a real `hotline serve` in a scratch data dir, upload PATH, and print the time until a search
    for QUERY finds its case, and the peak memory of the whole `hotline serve` process tree."""
    from app.bench import spine

    spine.run(path, query)


@bench_app.command("sip")
def bench_sip(
    calls: Annotated[int, typer.Option(help="Concurrent calls")] = 500,
    seconds: Annotated[float, typer.Option(help="Length of each call")] = 20.0,
    rate: Annotated[float, typer.Option(help="New calls per second while ramping up")] = 50.0,
    keep: Annotated[bool, typer.Option(help="Keep the scratch data dir (recordings, logs)")] = False,
) -> None:
    """N concurrent sipp calls streaming G.711 into a real `hotline sip`: RTP packets sent/received/lost per
    call, SIP response-time percentiles (INVITE and BYE, as sipp saw them), CPU of each process."""
    from app.bench import sip

    sip.run(calls, seconds, rate, keep)


@bench_app.command("live")
def bench_live(
    corpus: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                           help="Corpus folder with NAME_caller.ulaw, NAME_agent.ulaw, NAME.json")],
    calls: Annotated[str, typer.Option(help="Comma-separated call names (default: every NAME_caller.ulaw)")] = "",
    concurrent: Annotated[int, typer.Option(help="Calls played at the same time")] = 1,
    post_call: Annotated[bool, typer.Option(help="Also transcribe the calls post-call for the CER comparison")]
    = True,
) -> None:
    """Play corpus calls in real time into a real `hotline serve` (SIPREC, both parties) and print the live
    transcript's final delay after each utterance, partial update interval, CPU, and CER against the truth."""
    from app.bench import live as bench

    names = [n for n in calls.split(",") if n] or sorted(p.name[: -len("_caller.ulaw")]
                                                          for p in corpus.glob("*_caller.ulaw"))
    bench.run(corpus, names, concurrent, post_call)


@bench_app.command("cluster")
def bench_cluster(
    recordings: Annotated[int, typer.Option(help="Recordings uploaded during the faults")] = 16,
    calls: Annotated[int, typer.Option(help="sipp calls placed during the faults")] = 12,
    seed: Annotated[int, typer.Option(help="Seed: makes each upload's and call's bytes distinct")] = 12351,
    batch: Annotated[int, typer.Option(help="Recordings per throughput and encryption measurement")] = 8,
    keep: Annotated[bool, typer.Option(help="Keep the scratch folder and databases (also kept on a loss)")] = False,
    skip_throughput: Annotated[bool, typer.Option(help="Only the load with faults")] = False,
    storage: Annotated[str, typer.Option(help="s3 (SeaweedFS) or shared-dir (one local folder for all nodes)")]
    = "s3",
    beam_size: Annotated[int | None, typer.Option(help="HOTLINE_ASR_BEAM_SIZE for the workers (default: as "
                                                       "configured)")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait after the load for every case")] = 300.0,
    redis_down: Annotated[float, typer.Option(help="Seconds Redis stays stopped when it is restarted")] = 2.0,
    postgres_url: Annotated[str, typer.Option(help="PostgreSQL server; a scratch database is made and dropped")]
    = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
) -> None:
    """A whole site on this machine (PostgreSQL, Redis, SeaweedFS, 2 API processes, 2 workers, 1 SIP node):
    uploads and sipp calls while a worker, an API process and the SIP node are killed (-9) and Redis restarts;
    prints what came in, cases out, duplicates, losses, the longest wait; then throughput with one worker vs
    two (pinned to a core each) and the cost of encryption at rest. Exits 1 on a loss or a duplicate."""
    from app.bench import cluster as bench

    if storage not in ("s3", "shared-dir"):
        err.print("[red]--storage must be s3 or shared-dir[/]")
        raise typer.Exit(2)
    options = bench.ClusterOptions(recordings=recordings, calls=calls, seed=seed, batch=batch, keep=keep,
                                   skip_throughput=skip_throughput, storage=storage, beam_size=beam_size,
                                   timeout_s=timeout, redis_down_s=redis_down, postgres_url=postgres_url)
    try:
        results = bench.run(options)
    except bench.ClusterError as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from e
    raise typer.Exit(0 if results.ok else 1)


@bench_app.command("asr")
def bench_asr(
    corpus: Annotated[Path | None, typer.Argument(
        exists=True, file_okay=False, help="A corpus folder: NAME.wav + NAME.json truth (../shared/corpus/dev); "
                                           "not with --from-corrections")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print reference and hypothesis texts")] = False,
    openai: Annotated[bool, typer.Option(help="Also run openai-whisper on the same audio for a speed ratio")] = True,
    from_corrections: Annotated[bool, typer.Option(
        "--from-corrections", help="No corpus: CER of the machine's text against people's corrections in this "
                                   "site's database, overall and per speaker, and a correction's latency")] = False,
    baseline: Annotated[bool, typer.Option("--baseline", help="Also run plain faster-whisper (same weights, beam 5, "
                                                           "its own VAD, no prompt) and print both CERs")] = False,
) -> None:
    """Transcribe every file of a corpus and print CER (normalized: NFKC, simplified, numerals read out, no
    punctuation), real-time factor and peak memory, and the same through openai-whisper for comparison."""
    from app.bench import asr as bench
    from asr.models import ModelError

    if from_corrections:
        settings = Settings()
        with _database(settings) as database:
            bench.from_corrections(database, as_json=as_json)
        return
    if corpus is None:
        err.print("[red]give a corpus folder (or --from-corrections)[/]")
        raise typer.Exit(2)
    try:
        bench.run(corpus, as_json=as_json, verbose=verbose, compare_openai=openai, baseline=baseline)
    except ModelError as e:  # a model or diarization directory that is missing or broken: say what to set
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from e


@bench_app.command("search")
def bench_search(
    cases: Annotated[int, typer.Option(help="Cases to generate")] = 100_000,
    segments_per_case: Annotated[int, typer.Option(help="Transcript segments per case")] = 10,
    backend: Annotated[str, typer.Option(help="sqlite, postgres or both")] = "sqlite",
    postgres_url: Annotated[str, typer.Option(help="PostgreSQL server; a scratch schema is made and dropped")]
    = "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    rounds: Annotated[int, typer.Option(help="Times the query mix is run after one warm-up")] = 5,
) -> None:
    """Generate CASES hotline cases (SEGMENTS-PER-CASE segments each) in a scratch database, bulk loaded,
    then time a mix of searches (common/rare words, two words, filters, pages) and print p50/p95/max."""
    from app.bench import search as bench

    if backend not in ("sqlite", "postgres", "both"):
        err.print("[red]--backend must be sqlite, postgres or both[/]")
        raise typer.Exit(2)
    backends = ["sqlite", "postgres"] if backend == "both" else [backend]
    bench.run(cases=cases, segments_per_case=segments_per_case, backends=backends, pg_url=postgres_url,
              rounds=rounds)


@bench_app.command("cases")
def bench_cases(
    corpus: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                           help="A corpus folder: NAME.wav + NAME.json truth (../shared/corpus/dev)")],
    as_json: Annotated[bool, typer.Option("--json", help="Print per-call results as JSON")] = False,
    registry_size: Annotated[int, typer.Option(help="Generated enterprises in the registry beside the corpus's "
                                                    "registry_seed.csv")] = 20_000,
    registry_seed: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="Registry rows (CSV) to "
                                                       "seed instead of CORPUS/registry_seed.csv")] = None,
) -> None:
    """Import each call into a fresh embedded instance (real transcription, an enterprise registry) and print
    the suggested category, district, enterprise, amount and headcount against the truth, with totals."""
    from app.bench import cases as bench

    bench.run(corpus, as_json=as_json, registry_size=registry_size, seed_file=registry_seed)


@enterprises_app.command("import")
def enterprises_import(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="CSV (UTF-8 or GBK) or XLSX: 企业名称, 统一社会信用代码, 区市, 地址, "
                                              "行业, 企业类型, 别名")],
    actor: Annotated[str, typer.Option(help="Who imports it (audit trail)")] = "cli",
) -> None:
    """Import or update the enterprise registry from PATH: all rows or none; bad rows are listed with their
    row numbers and the command exits 1."""
    from app.enterprises import service as enterprises

    settings = Settings()
    with _database(settings) as database, Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=err,
    ) as bar:
        task = bar.add_task("读取", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        try:
            with database.session() as db:
                result = enterprises.import_file(db=db, path_or_bytes=path, actor=f"cli:{actor}", progress=progress)
        except enterprises.ImportFailed as e:
            bar.stop()
            for row_error in e.errors:
                where = f"第 {row_error.row} 行" if row_error.row else "文件"
                column = f"［{row_error.column}］" if row_error.column else ""
                typer.echo(f"{where}{column}：{row_error.message}")
            err.print(f"[red]{e}[/]")
            raise typer.Exit(1) from e
    typer.echo(f"导入完成：{result.rows} 行，新增 {result.created}，更新 {result.updated}，"
               f"未变 {result.unchanged}，新增别名 {result.aliases}")


@enterprises_app.command("list")
def enterprises_list(
    q: Annotated[str | None, typer.Option(help="Name, alias or credit code contains this")] = None,
    district: Annotated[str | None, typer.Option(help="e.g. 崂山区")] = None,
    limit: Annotated[int, typer.Option(help="Rows to show")] = 50,
    offset: Annotated[int, typer.Option(help="Rows to skip")] = 0,
) -> None:
    """List registered enterprises (tab-separated: id, name, credit code, district, type, cases)."""
    from app.enterprises import service as enterprises

    with _database(Settings()) as database, database.session() as db:
        total, rows = enterprises.search(db=db, q=q, district=district, limit=limit, offset=offset)
        for e, cases in rows:
            typer.echo("\t".join([str(e.id), e.name, e.credit_code or "-", e.district or "-",
                                   e.enterprise_type or "-", str(cases)]))
    err.print(f"{total} 家企业" + (f"，显示 {offset + 1}–{offset + len(rows)}" if rows else ""))


@enterprises_app.command("rescore")
def enterprises_rescore() -> None:
    """Recompute every enterprise's integrity score and colour (企业诚信) with the rule set in force; colour
    changes are audited. Run nightly; safe to run any time."""
    from app.enterprises import integrity

    with _database(Settings()) as database, database.session() as db:
        result = integrity.rescore_all(db=db, actor="cli")
    typer.echo(f"评分完成：{result.rated} 家企业，{len(result.colour_changes)} 家变色，用时 {result.seconds:.1f} 秒")


@enterprises_app.command("snapshot")
def enterprises_snapshot(
    month: Annotated[str | None, typer.Option(help="YYYY-MM (Beijing); default: the month just ended")] = None,
) -> None:
    """Keep each enterprise's integrity colour at the end of MONTH (run on the 1st); a month already kept is
    left as it was."""
    from app.db import utcnow
    from app.enterprises import integrity
    from app.enterprises.service import EnterpriseError

    target = month or integrity.previous_month(integrity.month_of(utcnow()))
    with _database(Settings()) as database:
        try:
            with database.session() as db:
                written = integrity.snapshot_month(db=db, month=target, actor="cli")
        except EnterpriseError as e:
            err.print(f"[red]{e}[/]")
            raise typer.Exit(1) from e
    typer.echo(f"{target} 月度快照：新增 {written} 家")


@bench_app.command("enterprises")
def bench_enterprises(
    size: Annotated[int, typer.Option(help="Registered enterprises to generate")] = 350_000,
    mentions: Annotated[int, typer.Option(help="Garbled mentions of registered names (as many unregistered)")]
    = 2000,
    seed: Annotated[int, typer.Option(help="Random seed")] = 12351,
) -> None:
    """Generate a registry of SIZE plausible Qingdao enterprise names, build the name resolver, and resolve
    ASR-garbled mentions of registered and unregistered names: accuracy, no-match rate, latency, memory."""
    from app.bench import enterprises as bench

    bench.run(size=size, mentions=mentions, seed=seed)


@bench_app.command("warnings")
def bench_warnings(
    cases: Annotated[int, typer.Option(help="Cases in the year, background and episodes together")] = 100_000,
    enterprises: Annotated[int, typer.Option(help="Registered enterprises")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed")] = 12351,
    episodes: Annotated[int, typer.Option(help="Injected episodes to detect (A/B/D about 4:2:4)")] = 25,
    trickles: Annotated[int, typer.Option(help="Slow-trickle enterprises that must not warn")] = 8,
    incremental: Annotated[int, typer.Option(help="Cases evaluated one by one for the incremental latency")] = 300,
    postgres_url: Annotated[str | None, typer.Option(help="Also run on this PostgreSQL server: a database "
                                                          "hotline_bench_warnings is made beside it and dropped")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON")] = False,
) -> None:
    """Generate a year of Qingdao hotline traffic with injected episodes (ground truth kept), replay it through
    the early-warning rules: full and incremental evaluation time, memory, idempotence, recall, delay after
    the second call, false warnings a month, trickle enterprises warned."""
    from app.bench import warnings as bench

    bench.run(cases=cases, enterprises=enterprises, seed=seed, episodes=episodes, trickles=trickles,
              incremental=incremental, postgres_url=postgres_url, as_json=as_json)


def _ledger_xlsx(kind: str, out: Path, date_from: datetime | None, date_to: datetime | None,
                 district: str | None, status: str | None, unmasked: bool, actor: str) -> None:
    from app.auth.permissions import UNMASKED
    from app.clues import ledgers

    filters = ledgers.LedgerFilter(period_start=date_from.date() if date_from else None,
                                   period_end=date_to.date() if date_to else None, district=district, status=status)
    with _database(Settings()) as database, database.session() as db:
        done = ledgers.export(db=db, kind=kind, filters=filters, path=out, actor=f"cli:{actor}",
                              masking=UNMASKED if unmasked else ledgers.MASKED)
    typer.echo(f"{done.filename}: {done.rows} 行 → {out}  sha256 {done.sha256}")


@ledger_app.command("arrears")
def ledger_arrears(
    xlsx: Annotated[Path, typer.Option("--xlsx", dir_okay=False, help="Write the ledger here (XLSX)")],
    date_from: Annotated[datetime | None, typer.Option("--from", formats=["%Y-%m-%d"],
                                                       help="Period start, Beijing day, inclusive")] = None,
    date_to: Annotated[datetime | None, typer.Option("--to", formats=["%Y-%m-%d"],
                                                     help="Period end, Beijing day, inclusive")] = None,
    closed: Annotated[bool, typer.Option("--closed", help="已办结欠薪线索清单 (closed in the period) instead of "
                                                          "新增欠薪线索清单 (received in it)")] = False,
    district: Annotated[str | None, typer.Option(help="e.g. 崂山区")] = None,
    status: Annotated[str | None, typer.Option(help="A clue's or case's status, e.g. 核实中, 办理")] = None,
    unmasked: Annotated[bool, typer.Option(help="Phone and ID numbers in full (default: masked)")] = False,
    actor: Annotated[str, typer.Option(help="Who exports it (audit trail)")] = "cli",
) -> None:
    """Write the arrears ledger (欠薪线索: clues and 欠薪 cases) as XLSX, streamed; audited as ledger.exported."""
    _ledger_xlsx("arrears-closed" if closed else "arrears-new", xlsx, date_from, date_to, district, status,
                 unmasked, actor)


@ledger_app.command("opinion")
def ledger_opinion(
    xlsx: Annotated[Path, typer.Option("--xlsx", dir_okay=False, help="Write the ledger here (XLSX)")],
    date_from: Annotated[datetime | None, typer.Option("--from", formats=["%Y-%m-%d"],
                                                       help="Period start, Beijing day, inclusive")] = None,
    date_to: Annotated[datetime | None, typer.Option("--to", formats=["%Y-%m-%d"],
                                                     help="Period end, Beijing day, inclusive")] = None,
    district: Annotated[str | None, typer.Option(help="e.g. 崂山区")] = None,
    status: Annotated[str | None, typer.Option(help="e.g. 核实中")] = None,
    unmasked: Annotated[bool, typer.Option(help="Phone and ID numbers in full (default: masked)")] = False,
    actor: Annotated[str, typer.Option(help="Who exports it (audit trail)")] = "cli",
) -> None:
    """Write the 舆情核实清单 (clues from 舆情监测, 上级交办, 上级督办) as XLSX; audited as ledger.exported."""
    _ledger_xlsx("opinion", xlsx, date_from, date_to, district, status, unmasked, actor)


def _report(kind: str, period: str, out: Path) -> None:
    from app.reports import service as reports

    settings = Settings()
    with _database(settings) as database:
        try:
            read, rendered = reports.generate(database=database, settings=settings, kind=kind, period=period,
                                              actor="cli", out_dir=out)
        except reports.ReportError as e:
            err.print(f"[red]{e.message}[/]")
            raise typer.Exit(2) from e
    for f in read.files:
        typer.echo(f"{out / f.filename}\t{f.size} bytes\tsha256 {f.sha256}")
    seconds = rendered.seconds
    typer.echo(f"报告 #{read.id} 已归档{'（与上次生成的内容相同）' if read.unchanged else ''}；"
               f"统计 {seconds['figures']:.2f} s，图表 {seconds['charts']:.2f} s，DOCX {seconds['docx']:.2f} s，"
               f"PDF {seconds['pdf']:.2f} s")


@report_app.command("monthly")
def report_monthly(
    month: Annotated[str, typer.Option(help="YYYY-MM (Beijing)")],
    out: Annotated[Path, typer.Option(file_okay=False, help="Write the DOCX and the PDF into this folder")],
) -> None:
    """Generate the monthly hotline analysis (月度分析报告) for MONTH as DOCX and PDF into OUT, and archive it
    (files under the data dir, sha256 in the audit chain)."""
    _report("monthly", month, out)


@report_app.command("daily")
def report_daily(
    out: Annotated[Path, typer.Option(file_okay=False, help="Write the DOCX and the PDF into this folder")],
    day: Annotated[str | None, typer.Option(help="YYYY-MM-DD (Beijing); default: yesterday")] = None,
) -> None:
    """Generate the daily enterprise-warning report (企业预警风险信息日报) for DAY as DOCX and PDF into OUT, and
    archive it. The worker makes yesterday's every morning at 07:00."""
    from datetime import timedelta

    from app.reports import periods

    _report("daily", day or (periods.today() - timedelta(days=1)).isoformat(), out)


@bench_app.command("reports")
def bench_reports(
    cases: Annotated[int, typer.Option(help="Cases to generate (a year of traffic)")] = 100_000,
    month: Annotated[str, typer.Option(help="The month reported (YYYY-MM, in the generated year 2025)")] = "2025-11",
    seed: Annotated[int, typer.Option(help="Random seed")] = 12351,
) -> None:
    """Generate CASES cases in a scratch database, then time the monthly report (DOCX and PDF with charts), a
    ledger of every case streamed to XLSX (with peak memory) and a case PDF."""
    from app.bench import reports as bench

    bench.run(cases=cases, month=month, seed=seed)


def _bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=err)


@storage_app.command("migrate")
def storage_migrate(
    to: Annotated[str, typer.Option("--to", help="Target store: s3://bucket/prefix (HOTLINE_S3_* settings), "
                                                 "or 'local'")],
    actor: Annotated[str, typer.Option(help="Who moves them (audit trail)")] = "cli",
) -> None:
    """Copy every recording to the target store and read each back to check its sha256; resumable (run it
    again after an interruption). The recordings switch to the target only once all are verified; then set
    HOTLINE_STORAGE_URL to the target on every node and restart them."""
    from app.recordings import moves
    from app.recordings.storage import StorageError

    settings = Settings()
    target = moves.normalize(to)
    with _database(settings) as database, _bar() as bar:
        todo, _ = moves.pending(database=database, target=target)
        task = bar.add_task(f"迁移至 {target}", total=len(todo))
        try:
            report = moves.migrate(database=database, settings=settings, target=target, actor=f"cli:{actor}",
                                   progress=lambda n: bar.advance(task, n))
        except StorageError as e:
            bar.stop()
            err.print(f"[red]{e}[/]")
            raise typer.Exit(2) from e
    for rec_id, why in report.failed.items():
        typer.echo(f"录音 #{rec_id}：{why}")
    typer.echo(f"共 {report.total} 份：本次复制并校验 {report.copied}，此前已校验 {report.already}，"
               f"失败 {len(report.failed)}，迁移期间新增 {report.filed_meanwhile}")
    if not report.complete:
        err.print("[yellow]尚未切换：修复上述问题后再次运行本命令（已校验的不会重复复制）[/]")
        raise typer.Exit(1)
    typer.echo(f"已切换 {report.switched} 份录音至 {target}。请在每个节点设置 HOTLINE_STORAGE_URL={target} 并重启；"
               "旧存储中的副本未删除。")


@storage_app.command("verify")
def storage_verify(actor: Annotated[str, typer.Option(help="Who checks (audit trail)")] = "cli") -> None:
    """Read every recording back and check its sha256 (and every encrypted chunk); exits 1 on any failure."""
    from app.recordings import moves

    settings = Settings()
    with _database(settings) as database, _bar() as bar:
        task = bar.add_task("校验录音", total=None)
        report = moves.verify_all(database=database, settings=settings, actor=f"cli:{actor}",
                                  progress=lambda n: bar.advance(task, n))
    for rec_id, why in report.failed.items():
        typer.echo(f"录音 #{rec_id}：{why}")
    typer.echo(f"共 {report.total} 份：完好 {report.ok}，失败 {len(report.failed)}")
    if report.failed:
        raise typer.Exit(1)


@storage_app.command("rotate-key")
def storage_rotate_key(
    retire: Annotated[bool, typer.Option(help="Then remove old master keys no recording uses (only once every "
                                               "node has reloaded the key file)")] = False,
    actor: Annotated[str, typer.Option(help="Who rotates (audit trail)")] = "cli",
) -> None:
    """Make a new master key current and wrap every recording's data key again with it (the audio itself
    is not re-encrypted). Needs a key file (the generated one, or HOTLINE_MASTER_KEY_FILE)."""
    from app.recordings import moves
    from app.recordings.crypto import CryptoError

    settings = Settings()
    with _database(settings) as database:
        try:
            done = moves.rotate_key(database=database, settings=settings, actor=f"cli:{actor}", retire=retire)
        except CryptoError as e:
            err.print(f"[red]{e}[/]")
            raise typer.Exit(2) from e
    typer.echo(f"新主密钥 {done.key_id}：重新封装 {done.rewrapped} 份录音密钥"
               + (f"，已删除旧主密钥 {', '.join(done.retired)}" if done.retired else ""))


class _Phases:
    """rich progress bars for app.backup.service: one bar per phase (bytes copied, or things done)."""

    def __init__(self, bar: Progress) -> None:
        self.bar, self.scale = bar, 1.0
        self.task: TaskID | None = None

    def phase(self, description: str, total: int | None, *, unit: str = "") -> None:
        self.scale = 1 / 2**20 if unit == "bytes" else 1.0
        self.task = self.bar.add_task(description + (" (MiB)" if unit == "bytes" else ""),
                                      total=None if total is None else total * self.scale)

    def advance(self, amount: int) -> None:
        if self.task is not None:
            self.bar.advance(self.task, amount * self.scale)


def _phase_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err)


@app.command()
def backup(
    target: Annotated[Path, typer.Argument(help="A new (or empty) directory for this backup")],
    no_database: Annotated[bool, typer.Option("--no-database", help="Leave the database out (PostgreSQL: "
                                              "pg_dump -Fc it right after this command, see README)")] = False,
    include_master_key: Annotated[bool, typer.Option("--include-master-key", help="Also copy the master key "
                                                     "(whoever holds the backup can then read the recordings)")]
        = False,
) -> None:
    """Back up the running site: a consistent copy of the SQLite database, the recordings as stored (ciphertext),
    archived reports, secret.key and media.token, and a manifest with every file's sha256 and the audit head."""
    from app.backup import service as backups

    if include_master_key:
        err.print("[bold yellow]警告：备份中将包含录音加密主密钥。拿到这份备份的人可以解密全部录音；"
                  "请把它存放在加密的介质上，或改为另行保管主密钥（见 README）。[/]")
    with _phase_bar() as bar:
        try:
            done = backups.backup(settings=Settings(), target=target, include_database=not no_database,
                                  include_master_key=include_master_key, progress=_Phases(bar))
        except backups.BackupError as e:
            bar.stop()
            err.print(f"[red]{e}[/]")
            raise typer.Exit(2) from e
    for note in done.notes:
        err.print(f"[yellow]{note}[/]")
    for name, why in done.missing.items():
        err.print(f"[red]未能备份 {name}：{why}[/]")
    counts, head = done.manifest["counts"], done.manifest["audit_head"] or {}
    typer.echo(f"备份完成：{target}（{done.files} 个文件，{done.bytes / 2**20:.1f} MiB，{done.seconds:.1f} 秒）；"
               f"录音 {counts['recordings'] - counts['recordings_deleted']} 份，工单 {counts['cases']} 件，"
               f"审计事件 {counts['audit_events']} 条，末尾 {head.get('seq', 0)}:{head.get('hash', '-')}"
               + ("；不含数据库" if no_database else ""))
    raise typer.Exit(0 if done.complete else 1)


@app.command()
def restore(
    source: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="A directory made by hotline backup")],
    no_database: Annotated[bool, typer.Option("--no-database", help="The database was restored already "
                                              "(PostgreSQL: pg_restore); restore the files and check it all")]
        = False,
) -> None:
    """Restore a backup into the empty data dir (HOTLINE_DATA_DIR), then check every file, the audit chain
    against the backup's head and every recording's sha256; exits 1 on any mismatch."""
    from app.backup import service as backups

    settings = Settings()
    with _phase_bar() as bar:
        try:
            done = backups.restore(settings=settings, source=source, include_database=not no_database,
                                   progress=_Phases(bar))
        except backups.BackupError as e:
            bar.stop()
            err.print(f"[red]{e}[/]")
            raise typer.Exit(2) from e
    for note in done.notes:
        err.print(note)
    for name, why in done.bad_files.items():
        typer.echo(f"文件 {name}：{why}")
    for rec_id, why in sorted(done.recordings_failed.items()):
        typer.echo(f"录音 #{rec_id}：{why}")
    for report_id, why in sorted(done.reports_failed.items()):
        typer.echo(f"报告 #{report_id}：{why}")
    typer.echo(done.audit_message)
    typer.echo(f"恢复至 {settings.data_dir}：复制 {done.bytes / 2**20:.1f} MiB（{done.copy_seconds:.1f} 秒），"
               f"校验 {done.verify_seconds:.1f} 秒；录音完好 {done.recordings_ok} 份，失败 "
               f"{len(done.recordings_failed)} 份，已按保存期限删除 {done.recordings_tombstones} 份；报告完好 "
               f"{done.reports_ok} 份；文件不符 {len(done.bad_files)} 个")
    if not done.ok:
        err.print("[red bold]恢复的数据未通过校验：请勿直接使用，先查明上述问题[/]")
        raise typer.Exit(1)
    typer.echo("校验通过")


@retention_app.command("sweep")
def retention_sweep(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted")] = False,
) -> None:
    """Delete the recordings of closed (办结) cases past their channel's retention period (HOTLINE_RETENTION_DAYS),
    except cases on legal hold; each deletion audited, a tombstone left. WORM-locked objects are skipped."""
    from app.recordings import retention

    settings = Settings()
    if not settings.retention_days:
        typer.echo("未设置保存期限（HOTLINE_RETENTION_DAYS）：录音永久保存，无需清理")
        return
    with _database(settings) as database, _bar() as bar:
        task = bar.add_task("按保存期限删除录音", total=None)
        swept = retention.sweep(database=database, settings=settings, actor="cli", dry_run=dry_run,
                                progress=lambda n, total: bar.update(task, completed=n, total=total))
    for item in swept.deleted:
        typer.echo(f"{'将删除' if dry_run else '已删除'} 录音 #{item.recording_id}（{item.channel}，"
                   f"工单 {item.case_no}，{item.size} 字节，保存期限 {item.days} 天）")
    for rec_id, why in swept.skipped.items():
        typer.echo(f"跳过 录音 #{rec_id}：{why}")
    kept = f"保留：保全 {swept.held} 份，工单未办结 {swept.open} 份，无工单 {swept.no_case} 份"
    typer.echo(f"{'试运行：将删除' if dry_run else '已删除'} {len(swept.deleted)} 份"
               f"（{swept.bytes_deleted / 2**20:.1f} MiB），跳过 {len(swept.skipped)} 份；{kept}"
               + ("" if dry_run else f"；清除转写文本 {swept.transcripts_emptied} 份"))
    if swept.skipped:
        raise typer.Exit(1)


@search_app.command("mark-numbers")
def search_mark_numbers() -> None:
    """Index again the cases indexed before phone and ID numbers were marked (run once after upgrading; the
    first `hotline serve` does it by itself): otherwise a role that sees a number masked could find its
    hidden digits by searching. Running it again changes nothing."""
    from app.search import service as search

    settings = Settings()
    with _database(settings) as database, database.session() as db:
        n = search.mark_numbers(db=db)
    typer.echo(f"重新标记 {n} 个工单")


def main() -> None:
    from app.startup import private_umask

    private_umask()  # every file and folder a `hotline` command makes is for this user only
    app()


if __name__ == "__main__":
    main()

