"""A `kill -9` of the whole adapter mid-call loses at most the last second: the next start files the call
from the leg files on disk, which hold no audio in clear (sealed under the call's key, the default)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from telephony.recorder import CallManifest
from tests.processes import stop, wait_for
from tests.telephony import sipp
from tests.telephony.conftest import start_adapter
from tests.telephony.test_sip_calls import CALLER_6S, aligned, decoded

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sipp.SIPP, reason="sipp (sip-tester) is not installed")]


def test_kill_9_mid_call_then_restart_files_the_call(tmp_path: Path, db_url: str) -> None:
    adapter = start_adapter(tmp_path, db_url)
    scenario = tmp_path / "call.xml"
    scenario.write_text(sipp.call_scenario(audio=CALLER_6S, seconds=10, caller="13600000001"))
    assert sipp.SIPP
    caller = subprocess.Popen([sipp.SIPP, f"127.0.0.1:{adapter.port}", "-sf", str(scenario), "-m", "1", "-i",
                               "127.0.0.1", "-p", "0", "-mi", "127.0.0.1", "-mp", str(sipp.free_media_port()),
                               "-nostdin", "-timeout", "30s"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: list((adapter.settings.calls_dir / "sip").glob("*/caller.sealed")), 15, "the call's audio")
        time.sleep(4)
        os.killpg(adapter.proc.pid, signal.SIGKILL)  # the SIP process, the media engine and the filer
        adapter.proc.wait()
        killed_at = time.time()
    finally:
        caller.kill()
        caller.wait()
    assert [c.status for c in adapter.calls()] == ["active"]  # on record as in progress when the power went
    # what the intruder who takes the disk now finds: the legs sealed, none of the caller's audio in clear
    (folder,) = (adapter.settings.calls_dir / "sip").iterdir()
    assert not list(folder.glob("*.wav")) and CallManifest.load(folder).wrapped_key
    on_disk = (folder / "caller.sealed").read_bytes()
    clear = decoded(CALLER_6S).tobytes()
    assert len(on_disk) > 3 * 16000  # seconds of it were flushed
    assert not any(clear[i:i + 32] in on_disk for i in range(0, 4 * 16000, 32))
    time.sleep(0.5)
    restarted = start_adapter(tmp_path, db_url)
    try:
        call = restarted.wait_calls(1)[0]
        assert (call.status, call.end_reason, call.caller) == ("ended", "recovered", "13600000001")
        assert call.recording_id
        left = restarted.audio(call.recording_id)[:, 0]
        sent = decoded(CALLER_6S)
        got = np.trim_zeros(aligned(left, sent), "b")  # the agent leg (greeting) may run on: padding
        started = call.answered_at.timestamp() if call.answered_at else killed_at
        heard = killed_at - started
        assert len(got) >= (heard - 1.5) * 8000  # at most the last second (+ scheduling) lost
        assert np.array_equal(got, sent[: len(got)])  # and what is there is exact
        assert "recovering call" in restarted.log_text()
    finally:
        stop(restarted.proc)
        restarted.database.dispose()
        adapter.database.dispose()
