"""A temporary Prefect API server, started before the pipeline is imported.

With no PREFECT_API_URL, Prefect's client imports its whole server package (~2 s) only to launch
`uvicorn prefect.server.api.server:create_app` in a subprocess, then waits for it (~3 s). This
module launches that same command first thing, importing neither Prefect nor its server, so the
server boots while the command imports the pipeline:

    with temporary_api() as api:          # PREFECT_API_URL points at it from here on
        from flows.process_inbox import process_inbox
        api.wait_ready()                  # ApiServerError if it did not start
        process_inbox(...)

Under a deployment (PREFECT_API_URL already set), or with a Prefect profile naming a server, it does
nothing. The server does not outlive the process: it is stopped on leaving the block and at exit,
and on Linux the kernel stops it if the process dies any other way (SIGTERM, SIGKILL), provided
the block was entered in the main thread.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an HTTP(S)_PROXY

# What SubprocessASGIServer._run_uvicorn_command sets (prefect/server/api/server.py), and no analytics.
SERVER_ENV = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1",
              "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


class ApiServerError(RuntimeError):
    """The temporary API server did not answer: the first line says why, the rest is its output's tail."""


class TemporaryApi:
    """The API this process talks to: `url`, and `process` when it is a temporary server of our own."""

    def __init__(self, url: str):
        self.url = url
        self.process: subprocess.Popen | None = None
        self._output = None  # the server's stdout and stderr: a temporary file
        self._port_hold: socket.socket | None = None
        self._launch_error: Exception | None = None
        self._answered = False
        self._settings = contextlib.ExitStack()  # Prefect settings for flows run against our server

    @classmethod
    def launch(cls, python: str = sys.executable) -> TemporaryApi:
        """Start a server process on a free port and return at once (it takes seconds to answer);
        a failure to launch it is raised by `wait_ready`.

        The port stays bound here (SO_REUSEADDR, not listening) until the server answers, so the
        system hands it to no one else meanwhile, while the server (asyncio also sets SO_REUSEADDR)
        can listen on it: the URL is right from the start, as it must be (Prefect reads it once).
        """
        hold = socket.socket()
        hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hold.bind(("127.0.0.1", 0))
        port = hold.getsockname()[1]
        api = cls(f"http://127.0.0.1:{port}/api")
        api._port_hold = hold
        api._output = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        # The server needs none of this command's secrets, and must not think it has a server already.
        env = {k: v for k, v in os.environ.items() if not k.startswith("DELEGATION_") and k != "PREFECT_API_URL"}
        try:
            spec = importlib.util.find_spec("prefect")  # where Prefect is, without executing it
            if spec is None or spec.origin is None:
                raise ImportError("Prefect is not installed")
            command = [python, "-m", "uvicorn", "--app-dir", str(Path(spec.origin).parent.parent),
                       "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
                       "--port", str(port), "--log-level", "error", "--lifespan", "on"]
            api.process = subprocess.Popen(command, env={**env, **SERVER_ENV}, stdin=subprocess.DEVNULL,  # noqa: S603
                                           stdout=api._output, stderr=subprocess.STDOUT,
                                           preexec_fn=_die_with_parent())
        except (OSError, ImportError) as exc:
            api._launch_error = exc
        return api

    def wait_ready(self, timeout: float = 120) -> None:
        """Return once the server answers /api/health (at once if it is not ours). ApiServerError,
        with the server's last output, if it could not be launched, exits, or is silent `timeout` s.

        For the rest of the block, flows against our server send no heartbeats: they serve a
        long-lived server's detection of crashed runs, and each flow's end waits up to 1 s (0.5 on
        average) for the heartbeat thread's sleep. Call it in the block's thread.
        """
        if self._launch_error is not None:
            raise ApiServerError(f"the temporary Prefect API server could not be launched: {self._launch_error}")
        if self.process is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise self._failure(f"exited with code {code} before answering")
            try:
                with _LOCAL.open(f"{self.url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        self._answered = True
                        self._release_port()
                        self._no_heartbeats()
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise self._failure(f"did not answer within {timeout:g} s")
            time.sleep(0.05)

    def _no_heartbeats(self) -> None:
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

        self._settings.enter_context(temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}))

    def _failure(self, what: str) -> ApiServerError:
        tail = self.output_tail()
        last = next((line.strip() for line in reversed(tail.splitlines()) if line.strip()), "no output")
        return ApiServerError(f"the temporary Prefect API server {what}: {last[:200]}\n{tail}".rstrip())

    def output_tail(self, size: int = 4000) -> str:
        """The last `size` bytes the server wrote (stdout and stderr) as text; '' if none or stopped."""
        if self._output is None or self._output.closed:
            return ""
        with open(self._output.fileno(), "rb", closefd=False) as reader:  # its own offset, not the writer's
            reader.seek(max(0, os.fstat(reader.fileno()).st_size - size))
            return reader.read().decode("utf-8", "replace")

    def _release_port(self) -> None:
        if self._port_hold is not None:
            self._port_hold.close()
            self._port_hold = None

    def stop(self, relay: bool = False) -> None:
        """Stop our server (SIGTERM, then SIGKILL after 5 s) and reap it; nothing if it is not ours.
        `relay`: copy to stderr what it wrote after it answered (for a block that failed)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if relay and self._answered and (said := self.output_tail(20_000)).strip():
            sys.stderr.write(said)
        self._release_port()
        if self._output is not None:
            self._output.close()


@contextlib.contextmanager
def temporary_api(python: str = sys.executable) -> Iterator[TemporaryApi]:
    """Yield the API to use: the configured one when there is one (`configured_api_url`: nothing
    started), else a temporary server's, launched at once, PREFECT_API_URL pointing at it in the block.

    Call `wait_ready()` before the first flow. On leaving the block Prefect's settings are as they
    were, its pending logs and events are sent, the server is stopped and PREFECT_API_URL unset
    again. `python` is the interpreter that runs the server (this one).
    """
    preset = configured_api_url()
    if preset:
        yield TemporaryApi(preset)
        return
    api = TemporaryApi.launch(python)
    atexit.register(api.stop)  # for a block in a daemon thread, which interpreter exit does not unwind
    os.environ["PREFECT_API_URL"] = api.url
    failed = False
    try:
        yield api
    except BaseException:
        failed = True
        raise
    finally:
        api._settings.close()
        os.environ.pop("PREFECT_API_URL", None)
        if api.process is not None:
            _drain_prefect()
        # Its output only when the block failed: stopped right after a run, it can log an error and
        # traceback for an event it is still recording, which it then records while shutting down.
        api.stop(relay=failed)
        atexit.unregister(api.stop)


def configured_api_url() -> str | None:
    """The API URL Prefect is configured with: PREFECT_API_URL in the environment, else in the active
    profile (`prefect config set`, `prefect cloud login`), read without importing Prefect; None if
    neither sets one. (A URL set only in a .env, prefect.toml or pyproject.toml is not looked for.)"""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    home = Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # no profiles file: Prefect's default profile, which sets no URL
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active")
    return profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL") or None


def _drain_prefect() -> None:
    """Let Prefect send the logs and events it still holds while the server is up (it would at exit,
    with the server gone: task runs are recorded from their events)."""
    if "prefect" not in sys.modules:
        return
    import logging

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (EventsWorker, APILogWorker):
        notes = logging.getLogger(worker.__name__)  # its "Still processing items: N..." while it drains
        level = notes.level
        notes.setLevel(logging.ERROR)
        try:
            worker.drain_all(timeout=5)
        finally:
            notes.setLevel(level)


def _die_with_parent():
    """On Linux, Popen's preexec_fn asking the kernel to SIGTERM the server when the thread that
    launched it ends: the main thread's end is the process's, however it dies. None elsewhere."""
    import threading

    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    import ctypes
    import signal

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def arm() -> None:  # in the child, between fork and exec
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the request was in place
            os._exit(1)

    return arm
