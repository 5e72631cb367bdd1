"""`delegation demo`: the main job end to end on embedded defaults, with nothing to configure.

A fresh key pair, a SQLite database loaded with the demo directory, a folder inbox holding a
handful of sealed sample forms (valid, invalid, a duplicate, an unsealed file, garbage), one run
of the process-inbox flow, and a summary of what happened to each file and where to look.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from flows.prefect_api import TemporaryApi

SAMPLES = Path(__file__).resolve().parent.parent / "sample_forms"
# (sample file, name it is dropped under): valid forms, rejected ones, and the same form twice.
DROPS = [
    ("valid_20.xlsx", "sakura-2026-11.xlsx.sealed"),
    ("valid_500.xlsx", "sakura-bulk-500.xlsx.sealed"),
    ("valid_third_party_high.xlsx", "sakura-auditor-read.xlsx.sealed"),
    ("invalid_CELL_BLANK.xlsx", "sakura-missing-cells.xlsx.sealed"),
    ("invalid_ACCOUNT_ID_INVALID.xlsx", "sakura-lost-zeros.xlsx.sealed"),
    ("directory_FULL_ACCESS_THIRD_PARTY.xlsx", "sakura-full-for-contractor.xlsx.sealed"),
    ("directory_REQUESTER_UNKNOWN.xlsx", "unknown-requester.xlsx.sealed"),
    ("valid_20.xlsx", "sakura-2026-11-resent.xlsx.sealed"),
]
STYLE = {"applied": "green", "duplicate": "cyan", "rejected": "yellow", "quarantined": "red"}


def run_demo(base: Path, console: Console | None = None, api: TemporaryApi | None = None) -> dict:
    """Set everything up under `base` (wiped first), run the flow once, print the summary.

    `api`: a temporary Prefect API server booting meanwhile (flows.prefect_api), waited for just
    before the flow."""
    console = console or Console()
    started = time.monotonic()
    if base.exists():
        shutil.rmtree(base)
    paths = _set_up(base, console)
    waiting = sum(1 for p in (base / "inbox" / "inbox").iterdir() if not p.name.startswith("."))
    os.environ["DELEGATION_PRIVATE_KEY_FILE"] = str(paths["key"])
    from flows.process_inbox import process_inbox

    if api is not None:
        api.wait_ready()
    with _progress(console, paths["db"], waiting):
        result = process_inbox(inbox_url=str(base / "inbox"), db_url=paths["db"], outbox_dir=str(base / "outbox"),
                               report_json=str(base / "report.json"))
    _summarise(console, base, result, time.monotonic() - started)
    return result


def _set_up(base: Path, console: Console) -> dict:
    from loaders.envelope import generate_intake_keypair, generate_signing_keypair, seal
    from loaders.inbox import open_inbox
    from loaders.store import Store

    keys = base / "keys"
    keys.mkdir(parents=True)
    private, public = generate_intake_keypair()
    (keys / "intake.key").write_bytes(private)
    (keys / "intake.key").chmod(0o600)
    (keys / "intake.pub").write_bytes(public)
    signing, signing_pub = generate_signing_keypair()
    (keys / "submitter.key").write_bytes(signing)
    (keys / "submitter.key").chmod(0o600)

    directory = base / "directory"
    shutil.copytree(SAMPLES / "directory", directory)
    (directory / "submitters.csv").write_text(
        "submitter_id,name,email,public_key,status\n"
        f'S1,Demo Account Manager,am@utility.invalid,"{signing_pub.decode().strip()}",active\n',
        encoding="utf-8",
    )
    db = f"sqlite:///{base / 'delegation.db'}"
    counts = Store.connect(db).load_directory(directory)
    console.print(f"[bold]Directory[/] loaded into {db}: "
                  + ", ".join(f"{n} {table}" for table, n in counts.items()))

    inbox = open_inbox(str(base / "inbox"))
    drops = [(name, seal((SAMPLES / sample).read_bytes(), public, signing)) for sample, name in DROPS]
    drops.append(("forgot-to-seal.xlsx", (SAMPLES / "valid_15.xlsx").read_bytes()))
    drops.append(("scanner-output.sealed", os.urandom(2048)))
    for n, (name, data) in enumerate(drops):
        inbox.put(f"inbox/{name}", data)
        when = time.time() - 3600 + n  # distinct receipt times: the resent copy comes last
        os.utime(base / "inbox" / "inbox" / name, (when, when))
    console.print(f"[bold]Inbox[/] {base / 'inbox'}: {len(drops)} files dropped, sealed to a fresh intake key "
                  "and signed by submitter S1 (two are not proper envelopes)")
    return {"key": keys / "intake.key", "db": db}


class _progress:
    """A progress bar fed by counting archived submissions in the database while the flow runs."""

    def __init__(self, console: Console, db_url: str, total: int):
        self.console, self.db_url, self.total = console, db_url, total
        self.stop = threading.Event()

    def __enter__(self):
        self.bar = Progress(TextColumn("[bold]process-inbox[/]"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=self.console, transient=True)
        self.task = self.bar.add_task("forms", total=self.total)
        self.bar.start()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def _poll(self) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine(self.db_url)
        while not self.stop.wait(0.25):
            try:
                with engine.connect() as conn:
                    done = conn.execute(sa.text("select count(*) from submissions where archived_at is not null"))
                    self.bar.update(self.task, completed=done.scalar())
            except Exception:  # noqa: BLE001, S112 - the table may not exist yet: just poll again
                continue
        engine.dispose()

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.bar.stop()


def _summarise(console: Console, base: Path, result: dict, seconds: float) -> None:
    table = Table(title="What happened to each file", title_justify="left")
    for column in ("file", "status", "accounts", "new / changed / same", "errors"):
        table.add_column(column, overflow="fold")
    for form in result["forms"]:
        codes = sorted({e["code"] for e in form["errors"]})
        style = STYLE.get(form["status"], "")
        changes = (f"{form['grants_created']} / {form['grants_updated']} / {form['grants_unchanged']}"
                   if form["status"] == "applied" else "")
        table.add_row(form["key"].removeprefix("inbox/"), f"[{style}]{form['status']}[/]",
                      str(form["accounts"] or ""), changes, ", ".join(codes[:4]) + (" …" if len(codes) > 4 else ""))
    console.print(table)
    emails = sorted((base / "outbox").glob("*.eml"))
    console.print(f"\nDone in {seconds:.1f} s. Where to look:")
    for what, where in [
        ("run report (JSON)", base / "report.json"),
        (f"emails ({len(emails)} .eml files)", base / "outbox"),
        ("sealed originals, by end state", f"{base / 'inbox' / 'archive'}/ and {base / 'inbox' / 'quarantine'}/"),
        ("audit trail", f"delegation audit --db sqlite:///{base / 'delegation.db'}"),
        ("current grants", f"delegation grants export --db sqlite:///{base / 'delegation.db'}"),
        ("Prefect UI (flow runs, artifacts)", "prefect server start, then http://127.0.0.1:4200"),
    ]:
        console.print(f"  [bold]{what}[/]: {where}")
    if result.get("failures"):
        console.print(f"[red]{len(result['failures'])} file(s) reached no end state:[/] {result['failures']}")
