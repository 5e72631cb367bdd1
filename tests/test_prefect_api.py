"""flows.prefect_api: the temporary Prefect API server `delegation run` starts before its imports.

One real server is started (in a child process, as `delegation run` would); every failure is
provoked with a stand-in for the Python that runs it, so it costs no server start.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from flows import prefect_api
from flows.prefect_api import ApiServerError, temporary_api

REPO = Path(__file__).resolve().parent.parent

# A process like `delegation run`: the server first, then Prefect, a tiny flow with a task; it
# reports what it saw, then raises inside the block.
CHILD = textwrap.dedent("""
    import json, os, sys, urllib.request
    from flows.prefect_api import temporary_api

    seen = {}
    try:
        with temporary_api() as api:
            seen.update(url=api.url, pid=api.process.pid, env=os.environ["PREFECT_API_URL"])
            from prefect import flow, task
            from prefect.runtime import flow_run

            api.wait_ready()
            with urllib.request.urlopen(api.url + "/health") as answer:
                seen["health"] = answer.status

            @task
            def one():
                return 1

            @flow
            def tiny():
                return one() + 41, flow_run.id

            seen["result"], seen["flow_run"] = tiny()
            with urllib.request.urlopen(api.url + "/flow_runs/" + seen["flow_run"]) as answer:
                seen["state"] = json.load(answer)["state_type"]
            raise RuntimeError("boom")
    except RuntimeError as exc:
        seen["raised"] = str(exc)
    seen["env_after"] = os.environ.get("PREFECT_API_URL")
    seen["alive_after"] = os.path.exists(f"/proc/{seen['pid']}")
    print(json.dumps(seen))
""")


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DELEGATION_"))}
    env.update(PREFECT_HOME=str(home), PYTHONPATH=str(REPO), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_LOGGING_LEVEL="WARNING")
    return env


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (a container's init may not reap an orphan at once)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def _wait_gone(pid: int, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while not _gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _fake_python(tmp_path: Path, script: str) -> str:
    """An executable standing in for the interpreter that runs the server."""
    path = tmp_path / "fake-python"
    path.write_text("#!/bin/sh\n" + script + "\n", encoding="utf-8")
    path.chmod(0o755)
    return str(path)


# A stand-in server: answers /api/health on uvicorn's --port, and says something on stderr.
FAKE_SERVER = textwrap.dedent("""
    import http.server, sys
    port = int(sys.argv[sys.argv.index("--port") + 1])

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/api/health" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    print("WARNING | a server-side warning", file=sys.stderr, flush=True)
    http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
""")


@pytest.fixture
def no_api_url(monkeypatch, tmp_path):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_PROFILES_PATH", str(tmp_path / "no-profiles.toml"))


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_a_real_server_answers_runs_a_flow_and_is_gone_after_an_exception_in_the_block(tmp_path):
    env = {**_clean_env(tmp_path / "home"), "PREFECT_LOGGING_LEVEL": "INFO"}
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["env"] == seen["url"] and seen["url"].startswith("http://127.0.0.1:")
    assert seen["health"] == 200
    assert seen["result"] == 42 and seen["state"] == "COMPLETED"  # the flow ran against our server
    assert seen["raised"] == "boom"
    assert seen["env_after"] is None and seen["alive_after"] is False
    assert _wait_gone(seen["pid"])
    # What Prefect still held at the block's end reached the server before it was stopped: the task
    # run (recorded from its events) and the flow run's last log line.
    import sqlite3

    with sqlite3.connect(tmp_path / "home" / "prefect.db") as db:
        states = db.execute("select state_type from task_run where flow_run_id = ?", (seen["flow_run"],)).fetchall()
        logs = [m for (m,) in db.execute("select message from log where flow_run_id = ?", (seen["flow_run"],))]
    assert states == [("COMPLETED",)]
    assert "Finished in state Completed()" in logs
    assert "Error logging to API" not in done.stderr, done.stderr[-3000:]


def test_a_preset_api_url_starts_nothing(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.internal:4200/api")
    monkeypatch.setattr(prefect_api.subprocess, "Popen", lambda *a, **k: pytest.fail("a server was started"))
    with temporary_api() as api:
        assert api.url == "http://prefect.internal:4200/api" and api.process is None
        api.wait_ready(timeout=0)
    assert os.environ["PREFECT_API_URL"] == "http://prefect.internal:4200/api"


def test_a_profile_naming_a_server_starts_nothing(no_api_url, monkeypatch, tmp_path):
    profiles = tmp_path / "profiles.toml"
    profiles.write_text('active = "ops"\n[profiles.ops]\nPREFECT_API_URL = "https://prefect.internal/api"\n'
                        '[profiles.ephemeral]\n', encoding="utf-8")
    monkeypatch.setenv("PREFECT_PROFILES_PATH", str(profiles))
    monkeypatch.setattr(prefect_api.subprocess, "Popen", lambda *a, **k: pytest.fail("a server was started"))
    with temporary_api() as api:
        assert api.url == "https://prefect.internal/api" and api.process is None
        assert "PREFECT_API_URL" not in os.environ  # Prefect reads its profile itself
    monkeypatch.setenv("PREFECT_PROFILE", "ephemeral")  # the one `prefect profile use` would name
    assert prefect_api.configured_api_url() is None


def test_a_server_that_cannot_be_launched_is_one_clear_error(no_api_url, tmp_path):
    with temporary_api(python=str(tmp_path / "no-such-python")) as api, \
            pytest.raises(ApiServerError, match=r"could not be launched: .*No such file"):
        api.wait_ready()
    assert "PREFECT_API_URL" not in os.environ


def test_a_server_that_exits_early_is_named_with_its_last_words(no_api_url, tmp_path):
    python = _fake_python(tmp_path, 'echo "starting" >&2\necho "sqlite3.OperationalError: unable to open '
                                    'database file" >&2\nexit 3')
    with temporary_api(python=python) as api, pytest.raises(ApiServerError) as raised:
        api.wait_ready()
    first, *rest = str(raised.value).splitlines()
    assert first == ("the temporary Prefect API server exited with code 3 before answering: "
                     "sqlite3.OperationalError: unable to open database file")
    assert "starting" in rest


def test_a_silent_server_times_out_and_is_stopped(no_api_url, tmp_path):
    python = _fake_python(tmp_path, "exec sleep 60")
    with temporary_api(python=python) as api:
        process = api.process
        with pytest.raises(ApiServerError, match=r"did not answer within 0\.3 s: no output"):
            api.wait_ready(timeout=0.3)
    assert process.poll() is not None  # stopped and reaped on leaving the block


def test_the_server_gets_the_settings_but_none_of_the_secrets(no_api_url, monkeypatch, tmp_path):
    monkeypatch.setenv("DELEGATION_DB_URL", "postgresql+psycopg://delegation:pw-7f3a@db/delegation")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    python = _fake_python(tmp_path, "env | grep -E '^(PREFECT|DELEGATION)' | sort\nexit 1")
    with temporary_api(python=python) as api, pytest.raises(ApiServerError) as raised:
        api.wait_ready()
    said = str(raised.value).splitlines()[1:]
    assert f"PREFECT_HOME={tmp_path / 'home'}" in said and "PREFECT__SERVER_EPHEMERAL=1" in said
    assert "PREFECT_UI_ENABLED=0" in said and "PREFECT_SERVER_ANALYTICS_ENABLED=false" in said
    assert not [line for line in said if line.startswith(("PREFECT_API_URL=", "DELEGATION_"))]


@pytest.mark.parametrize("fails", [False, True], ids=["block done", "block failed"])
def test_what_the_server_said_is_shown_only_when_the_block_failed(no_api_url, tmp_path, capsys, fails):
    (tmp_path / "server.py").write_text(FAKE_SERVER, encoding="utf-8")
    python = _fake_python(tmp_path, f'exec "{sys.executable}" "{tmp_path / "server.py"}" "$@"')
    with contextlib.suppress(RuntimeError), temporary_api(python=python) as api:
        api.wait_ready(timeout=30)
        process = api.process
        if fails:
            raise RuntimeError("the run failed")
    assert process.poll() is not None
    assert ("a server-side warning" in capsys.readouterr().err) is fails


@pytest.mark.skipif(sys.platform != "linux", reason="the kernel's parent-death signal is Linux's")
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_the_server_does_not_outlive_a_killed_command(tmp_path, how):
    python = _fake_python(tmp_path, "exec sleep 60")  # a server still booting when its command dies
    script = (f"from flows.prefect_api import temporary_api\nimport time\n"
              f"with temporary_api(python={python!r}) as api:\n"
              f"    print(api.process.pid, flush=True)\n    time.sleep(60)\n")
    command = subprocess.Popen([sys.executable, "-c", script], env=_clean_env(tmp_path / "home"), cwd=REPO,
                               stdout=subprocess.PIPE, text=True)
    server = int(command.stdout.readline())
    command.send_signal(how)
    command.wait(10)
    command.stdout.close()
    assert _wait_gone(server), "the server outlived its command"


def test_delegation_run_says_in_one_line_that_the_server_did_not_start(no_api_url, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from flows.cli import cli

    for name in ("DELEGATION_PRIVATE_KEY_FILE", "DELEGATION_DB_URL", "DELEGATION_SMTP_URL", "DELEGATION_OUTBOX_DIR",
                 "PREFECT_SERVER_ANALYTICS_ENABLED", "PREFECT_LOGGING_EXTRA_LOGGERS", "PREFECT_LOGGING_LEVEL"):
        monkeypatch.delenv(name, raising=False)  # restored after the test: `run` sets them
    python = _fake_python(tmp_path, 'echo "PermissionError: [Errno 13] Permission denied: prefect.db" >&2\nexit 3')
    real = prefect_api.temporary_api
    monkeypatch.setattr(prefect_api, "temporary_api", lambda: real(python=python))
    (tmp_path / "inbox").mkdir()
    result = CliRunner().invoke(cli, ["run", "--inbox", str(tmp_path / "inbox"), "--db",
                                      f"sqlite:///{tmp_path / 'd.db'}", "--private-key", str(tmp_path / "k"),
                                      "--outbox", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [
        "delegation run: the run could not go on: ApiServerError: the temporary Prefect API server exited with "
        "code 3 before answering: PermissionError: [Errno 13] Permission denied: prefect.db"]
