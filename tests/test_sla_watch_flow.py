"""The `sla-watch` deployment's flow, run by Prefect with a frozen clock: notices once, delivered,
and the board published as an artifact (one flow test: a Prefect server costs seconds)."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email import policy

import pytest
import yaml
from history_builders import drop

from flows.sla import sla_watch
from loaders.store import Store

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def prefect_api():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


def test_sla_watch_tells_operations_once_and_publishes_the_board(prefect_api, sqlite_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DELEGATION_OPS_EMAIL", "ops@watch.example")
    store = Store.connect(sqlite_url)
    try:
        drop(store, "inbox/stuck.xlsx.sealed", T0)
    finally:
        store.dispose()
    outbox = tmp_path / "outbox"
    first = sla_watch(db_url=sqlite_url, outbox_dir=str(outbox), now=T0 + timedelta(days=11))
    again = sla_watch(db_url=sqlite_url, outbox_dir=str(outbox), now=T0 + timedelta(days=11, hours=1))
    assert first["notices_queued"] == [["inbox/stuck.xlsx.sealed", "at-risk"]] and again["notices_queued"] == []
    assert [e["key"] for e in first["at_risk"]] == ["inbox/stuck.xlsx.sealed"]
    (sent,) = outbox.glob("*.eml")
    message = email.message_from_bytes(sent.read_bytes(), policy=policy.default)
    assert message["To"] == "ops@watch.example" and "at risk" in message["Subject"]

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:  # the raw API: this client's filters send nulls it refuses
        response = client.request("POST", "/artifacts/filter", json={
            "artifacts": {"key": {"any_": ["sla-clock"]}}, "sort": "CREATED_DESC", "limit": 1, "offset": 0})
    (board,) = response.json()
    assert "1 pending, 1 at risk" in board["data"] and "inbox/stuck.xlsx.sealed" in board["data"]


def test_prefect_yaml_schedules_the_watch():
    from pathlib import Path

    config = yaml.safe_load((Path(__file__).resolve().parent.parent / "prefect.yaml").read_text())
    (watch,) = [d for d in config["deployments"] if d["name"] == "sla-watch"]
    assert watch["entrypoint"] == "flows/sla.py:sla_watch"
    assert watch["schedules"] and all(s.get("active", True) for s in watch["schedules"])
