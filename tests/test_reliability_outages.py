"""Guarantee 4: the object store, the database or the mail server away for a while.

Bounded retries, one clear log line, a non-zero exit when the run could not finish; nothing moved
or lost; and the next run, the service back, clears the backlog. Services are made to fail for
real: moto's S3 server stopped, PostgreSQL reached through a TCP proxy that is shut (or a port
where nothing listens), the SMTP server not there.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

import pytest

from flows.pipeline import Batch, deliver_pending, finish_unfinished, process_items
from tests.pipeline_builders import (
    assert_exactly_once,
    deps_for,
    end_places,
    fixture_prefect_api,  # noqa: F401 (fixture)
    hostile_drops,
    make_world,
    outbox_rows,
    run,
    smtpd_on,
    valid_drop,
    waiting,
)
from tests.servers import RecordingHandler, aws_dummy_env, free_port, moto_server


def _drops(world) -> list:
    return [*(valid_drop(world, i) for i in range(1, 6)), *hostile_drops(world)[:3]]


def _assert_stopped_at(first: Batch, items: list, *, staged: bool) -> None:
    """One after the other, the three files before the outage were finished and the rest left; in
    stages, those three may have been committed and left too (their delivery or move came after
    the outage): every file is either finished or left, none of those after the outage finished."""
    if not staged:
        assert len(first.done) == 3 and first.failed == [i.key for i in items[3:]]
        return
    done = {o.key for o in first.done}
    assert done <= {i.key for i in items[:3]}
    assert sorted(first.failed) == sorted(i.key for i in items if i.key not in done)


def _next_run(world, first: Batch) -> Batch:
    """A later run, the service back: finishes what the first left (in-process, as the flow does)."""
    deps = deps_for(world)
    items = waiting(deps)
    deliver_pending(deps)
    batch = Batch(done=finish_unfinished(deps, {i.key for i in items}, run_id="next"))
    batch = process_items(deps, items, run_id="next", batch=batch)
    deliver_pending(deps)
    assert batch.failed == [] and batch.stopped is None
    return batch


def _outage_at(inbox, key: str, stop, *, method: str, after: bool = False) -> None:
    """Wrap inbox.<method> so that the service stops when it is first called for `key` (or just after)."""
    real = getattr(inbox, method)
    fired = []

    def wrapped(k, *args, **kwargs):
        if k != key or fired:
            return real(k, *args, **kwargs)
        fired.append(k)
        if not after:
            stop()
            return real(k, *args, **kwargs)
        result = real(k, *args, **kwargs)
        stop()
        return result

    setattr(inbox, method, wrapped)


# --- the object store -----------------------------------------------------------------------------


@pytest.mark.parametrize("staged", [False, True], ids=["one by one", "in stages"])
@pytest.mark.parametrize("when", ["fetch", "archive"],
                         ids=["stopped before a file is read", "stopped after a form is committed, before its move"])
def test_moto_stopped_mid_run_stops_the_run_loses_nothing_and_the_next_run_clears_the_backlog(
    when, staged, tmp_path, sqlite_url, monkeypatch
):
    port = free_port()
    with moto_server(port) as server:
        aws_dummy_env(monkeypatch, server.endpoint)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
        world = make_world(tmp_path, sqlite_url, delegates=6, inbox_url=f"s3://outage-{when}/root")
        world.drop(*_drops(world))
        deps = deps_for(world, staged=staged)
        items = waiting(deps)
        _outage_at(deps.inbox, items[3].key, server.stop, method=when)

        started = time.monotonic()
        try:
            first = process_items(deps, items, run_id="first")
        finally:
            deps.close()
        assert time.monotonic() - started < 20, "bounded retries"

    assert first.stopped and "unavailable" in first.stopped
    _assert_stopped_at(first, items, staged=staged)
    with moto_server(port):  # back, with everything it held (moto keeps its state in the process)
        places = end_places(world)
        left = [i.key.rsplit("/", 1)[1] for i in items if i.key in first.failed]
        if staged:  # a move cut short by the outage may have left its copy: the original stays too
            assert all("inbox" in places[name] for name in left), "no original deleted before its end"
        else:
            assert all(places[name] == ["inbox"] for name in left), "nothing moved"
        second = _next_run(world, first)
        assert_exactly_once(world, [o.to_report() for o in first.done + second.done])


# --- the database ---------------------------------------------------------------------------------


class TcpProxy:
    """127.0.0.1:port -> target, until `stop()` shuts it and every connection through it."""

    def __init__(self, target: tuple[str, int], port: int):
        self.target, self.port = target, port
        self.listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self.sockets: list[socket.socket] = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        self.stopped = True
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; close alone may not
        self.listener.close()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@pytest.mark.postgres
@pytest.mark.parametrize("staged", [False, True], ids=["one by one", "in stages"])
@pytest.mark.parametrize("when", ["fetch", "archive"],
                         ids=["refused before a claim", "refused after the move, before it is recorded"])
def test_postgresql_going_away_mid_run_stops_the_run_and_the_next_run_clears_the_backlog(when, staged, tmp_path,
                                                                                         pg_url):
    world = make_world(tmp_path, pg_url, delegates=6)
    world.drop(*_drops(world))
    port = free_port()
    proxy = TcpProxy(("127.0.0.1", 5432), port)
    proxied = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{port}")
    deps = deps_for(world, db_url=proxied, lease_seconds=1, staged=staged)
    items = waiting(deps)
    _outage_at(deps.inbox, items[3].key, proxy.stop, method=when, after=True)

    try:
        first = process_items(deps, items, run_id="first")
    finally:
        deps.close()
    time.sleep(1.1)  # a claim the worker could not give back (the database was away) runs out

    assert first.stopped and "OperationalError" in first.stopped
    _assert_stopped_at(first, items, staged=staged)
    places = end_places(world)
    moved = {i.key.rsplit("/", 1)[1] for i in items[3:]} - {n for n, p in places.items() if p == ["inbox"]}
    assert moved == ({items[3].key.rsplit("/", 1)[1]} if when == "archive" else set())
    second = _next_run(world, first)
    if when == "archive":  # moved but never recorded: the next run finds its copy and reports it
        assert items[3].key in {o.key for o in second.done}
    assert_exactly_once(world, [o.to_report() for o in first.done + second.done])


# --- whole runs: exit codes and log lines ---------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "line"),
    [
        ("postgresql refusing connections", "database is unreachable"),
        ("sqlite file that cannot be opened", "database is unreachable"),
        ("s3 endpoint not answering", "unavailable"),
    ],
)
def test_a_run_that_cannot_reach_a_service_says_so_exits_non_zero_and_moves_nothing(
    service, line, tmp_path, sqlite_url, prefect_api
):
    world = make_world(tmp_path, sqlite_url, delegates=6)
    world.drop(*_drops(world))
    env = world.env()
    if service.startswith("postgresql"):
        env["DELEGATION_DB_URL"] = "postgresql+psycopg://postgres@127.0.0.1:1/delegation"
    elif service.startswith("sqlite"):
        env["DELEGATION_DB_URL"] = f"sqlite:///{tmp_path}/no/such/folder/delegation.db"
    else:
        env.update({"DELEGATION_INBOX_URL": "s3://nowhere/root", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
                    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "2", "AWS_CONFIG_FILE": "/dev/null",
                    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true"})

    started = time.monotonic()
    code, out = run(env, prefect_api, log=tmp_path / "run.log")

    assert code != 0, out
    assert time.monotonic() - started < 60
    [said] = [x for x in out.splitlines() if x.startswith("delegation run:")]
    assert line in said, out
    assert {tuple(p) for p in end_places(world).values()} == {("inbox",)}, "nothing moved"


def test_with_the_smtp_server_down_the_run_exits_1_and_the_next_run_delivers_every_email_once(
    tmp_path, sqlite_url, prefect_api
):
    world = make_world(tmp_path, sqlite_url, delegates=6)
    world.drop(*_drops(world))
    port = free_port()
    env = world.env(DELEGATION_MAIL_RETRY_SECONDS="0")
    del env["DELEGATION_OUTBOX_DIR"]
    env["DELEGATION_SMTP_URL"] = f"smtp://127.0.0.1:{port}"

    code, out = run(env, prefect_api, "--report-json", str(tmp_path / "first.json"), log=tmp_path / "first.log")

    assert code == 1, out
    assert "the mail server could not be reached" in out
    assert {r["status"] for r in outbox_rows(world.db_url)} == {"pending"}
    handler = RecordingHandler()
    with smtpd_on(handler, port):  # the server is back
        code, out = run(env, prefect_api, "--report-json", str(tmp_path / "second.json"), log=tmp_path / "second.log")
    assert code == 0, out

    reports = [json.loads((tmp_path / f"{n}.json").read_text())["forms"] for n in ("first", "second")]
    assert len(reports[0]) == len(world.drops) and reports[1] == [], "every form reached its end state at once"
    rows = outbox_rows(world.db_url)
    assert {r["status"] for r in rows} == {"sent"} and len(rows) == len(world.drops)
    assert sorted(m.content.split(b"Message-ID: ")[1].split(b"\r\n")[0].decode() for m in handler.messages) == sorted(
        r["message_id"] for r in rows), "each email once"
