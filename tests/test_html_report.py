"""`delegation report`: the numbers on the page, a self-contained file, and a headless Chromium
rendering of it for an empty database and a busy one (issue 6).

Chromium (Debian package `chromium`) is skipped where missing, unless DELEGATION_REQUIRE_CHROMIUM=1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from history_builders import NOW, busy_history, drop

from flows.cli import cli
from flows.html_report import gather, render
from loaders.store import Store
from loaders.store.schema import submissions

SINCE = (NOW - timedelta(days=45)).date()
SVG_NS = "http://www.w3.org/2000/svg"


@pytest.fixture
def busy(db_url):
    store = Store.connect(db_url)
    counts = busy_history(store, now=NOW)
    drop(store, 'inbox/<script>alert("x")</script>.sealed', NOW - timedelta(days=12))  # at risk, hostile name
    yield store, counts
    store.dispose()


def _svgs(page: str) -> list[ET.Element]:
    """Every inline chart, parsed as XML: a malformed one fails here, not silently in a browser."""
    return [ET.fromstring(chunk) for chunk in re.findall(r"<svg\b.*?</svg>", page, flags=re.S)]


def _self_contained(page: str) -> None:
    without_ns = page.replace(f'xmlns="{SVG_NS}"', "")
    assert not re.search(r"https?://|<script|<link|<img|@import|url\(|src=", without_ns, flags=re.I)


def test_the_page_shows_the_period_the_statuses_the_sla_and_the_codes(busy):
    store, counts = busy
    data = gather(store, since=SINCE, now=NOW, source="test")
    assert data.totals == {s: counts.get(s, 0) + (s == "processing") for s in data.totals}
    assert [d for d, _ in data.days] == [SINCE + timedelta(n) for n in range(46)]
    comp = data.completion
    finished = sum(counts.values()) - counts["processing"]
    assert comp["completed"] == finished == sum(comp["buckets"].values())
    assert 0 < comp["median_seconds"] <= comp["p95_seconds"] <= comp["max_seconds"]
    assert comp["within_sla"] == finished - comp["buckets"]["> 15 d"]

    with store.reading() as conn:  # the codes, counted the slow way from every stored outcome
        reports = conn.execute(sa.select(submissions.c.status, submissions.c.report)
                               .where(submissions.c.status.in_(("rejected", "quarantined")))).all()
    expected = Counter()
    for status, report in reports:
        for code in {e["code"] for e in json.loads(report)["errors"]}:
            expected[(code, status)] += 1
    assert len(expected) <= 10 and {(c, s): n for c, s, n in data.codes} == dict(expected)
    assert [n for _, _, n in data.codes] == sorted((n for _, _, n in data.codes), reverse=True)

    page = render(data)
    _self_contained(page)
    charts = _svgs(page)
    assert len(charts) == 3
    bars = [r for r in charts[0].iter(f"{{{SVG_NS}}}rect")]
    drawn = sum(int(r.find(f"{{{SVG_NS}}}title").text.split(": ")[1].split()[0]) for r in bars)
    assert drawn == sum(data.totals.values())  # every form is in one bar segment
    assert "15-day SLA" in page and "Top rejection codes" in page
    assert '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;' in page and "<script>" not in page
    assert page.count('class="pill breached"') == len(data.board.breached)
    assert page.count('class="pill at-risk"') == len(data.board.at_risk) == 2  # stuck-11.2 and the hostile one


def test_an_empty_database_gives_a_page_that_says_so(db_url):
    store = Store.connect(db_url)
    try:
        page = render(gather(store, since=SINCE, now=NOW))
    finally:
        store.dispose()
    _self_contained(page)
    assert len(_svgs(page)) == 3
    assert f"No forms received since {SINCE.isoformat()}." in page
    assert "No form is at risk or past due" in page and "No form rejected or quarantined" in page


def test_a_long_period_is_drawn_per_week(sqlite_url):
    store = Store.connect(sqlite_url)
    try:
        busy_history(store, now=NOW, days=200)
        data = gather(store, since=(NOW - timedelta(days=200)).date(), now=NOW)
    finally:
        store.dispose()
    page = render(data)
    assert "Forms received per week, by status" in page and "week of " in page


# --------------------------------------------------------------------------------------------
# the command, and Chromium


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.environ.get("DELEGATION_REQUIRE_CHROMIUM") == "1":
        pytest.fail("Chromium is required (DELEGATION_REQUIRE_CHROMIUM=1): apt-get install chromium")
    return found


def _headless(browser: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=90, check=False,
    )


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@pytest.mark.parametrize("history", ["empty", "busy"])
def test_the_report_command_writes_a_page_chromium_renders(history, sqlite_url, tmp_path):
    store = Store.connect(sqlite_url)
    try:
        if history == "busy":
            busy_history(store, now=NOW)
    finally:
        store.dispose()
    out = tmp_path / "report" / "report.html"
    result = CliRunner().invoke(cli, ["report", "--db", sqlite_url, "--since", SINCE.isoformat(), "-o", str(out),
                                      "--now", NOW.strftime("%Y-%m-%dT%H:%M:%SZ")])
    assert result.exit_code == 0, result.output
    assert f"since {SINCE.isoformat()} written to {out}" in result.output
    page = out.read_text(encoding="utf-8")
    _self_contained(page)

    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium not installed (Debian package `chromium`)")
    shot = tmp_path / "report.png"
    run = _headless(browser, tmp_path, f"--screenshot={shot}", "--window-size=1280,1600", out.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    assert _png_size(shot) == (1280, 1600)
    assert shot.stat().st_size > (60_000 if history == "busy" else 20_000)  # drawn, not a blank page
    dom = _headless(browser, tmp_path, "--dump-dom", out.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") == 3 and "Delegate User Forms" in dom.stdout
    assert dom.stdout.count("<rect") == page.count("<rect")  # every bar parsed as written


def test_a_since_in_the_future_is_refused(sqlite_url, tmp_path):
    result = CliRunner().invoke(cli, ["report", "--db", sqlite_url, "--since", str(date.today() + timedelta(2)),
                                      "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "future" in result.output
