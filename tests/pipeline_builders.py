"""Builders for the reliability tests: keys, a directory of many delegates, sealed forms, an inbox.

A `World` is one inbox root, one database, one outbox and the keys, plus the forms dropped into it
and what each must come to (its `Drop`). The directory gives every valid form its own delegate, so
the grants that the run must leave are known exactly whatever order the forms are applied in.
"""

from __future__ import annotations

import contextlib
import csv
import email
import functools
import io
import json
import os
import random
import string
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from email import policy
from pathlib import Path

import pytest

from grants.form import EXAMPLE_SHEET, FORM_SHEET, TITLES

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_forms"
CUSTOMER = "C900"
ACCOUNTS = tuple(f"09{i:08d}" for i in range(40))  # the business's accounts; [0] is every delegate's first
CLOSED = "0999999999"
OPS = "ops@reliability.example"
LEVELS = ("Full", "High", "Read Only")


@dataclass(frozen=True)
class Person:
    person_id: str
    first_name: str
    last_name: str
    email: str
    phone: str
    employee: bool = True  # a direct employee of the business (else a third party to it)

    @property
    def cells(self) -> tuple[str, str, str, str]:
        return (self.first_name, self.last_name, self.email, self.phone)


REQUESTER = Person("R000", "Rita", "Reyes", "rita@corp.example", "4155550000")
STRANGER = Person("-", "Sam", "Stranger", "sam@nowhere.example", "4155559999", employee=False)  # no login


def delegate(i: int, *, first_name: str | None = None) -> Person:
    """Delegate number i (1-based): odd ones are employees, even ones third parties."""
    name = first_name or "Dee" + "".join(string.ascii_lowercase[int(d)] for d in str(i))
    return Person(f"D{i:03d}", name, "Delegate", f"dee{i}@corp.example", f"41555{i:05d}", employee=i % 2 == 1)


# --------------------------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class Keys:
    intake_key: Path
    intake_pub: bytes
    signing_key: bytes
    signing_pub: bytes
    other_pub: bytes  # an intake key the pipeline does not hold

    @property
    def private_pem(self) -> bytes:
        return self.intake_key.read_bytes()


def make_keys(folder: Path) -> Keys:
    from loaders.envelope import generate_intake_keypair, generate_signing_keypair

    folder.mkdir(parents=True, exist_ok=True)
    private, public = generate_intake_keypair()
    (folder / "intake.key").write_bytes(private)
    (folder / "intake.key").chmod(0o600)
    signing, signing_pub = generate_signing_keypair()
    _, other_pub = generate_intake_keypair()
    return Keys(folder / "intake.key", public, signing, signing_pub, other_pub)


# ---------------------------------------------------------------------------------------- directory


def write_directory(folder: Path, delegates: list[Person], *, invited_only: tuple[Person, ...] = (),
                    submitter_pub: bytes | None = None) -> Path:
    """A business with ACCOUNTS, its authorized user REQUESTER, and delegates holding ACCOUNTS[0].

    `invited_only` people have a login but only an invitation (so a form for them is refused).
    """
    folder.mkdir(parents=True, exist_ok=True)
    people = [REQUESTER, *delegates, *invited_only]
    files = {
        "customers.csv": [("customer_id", "name", "customer_type"), (CUSTOMER, "Reliable Corp", "business")],
        "accounts.csv": [("account_id", "customer_id", "status"),
                         *((a, CUSTOMER, "active") for a in ACCOUNTS), (CLOSED, CUSTOMER, "closed")],
        "people.csv": [("person_id", "first_name", "last_name", "email", "phone"),
                       *((p.person_id, p.first_name, p.last_name, p.email, p.phone) for p in people)],
        "roles.csv": [("customer_id", "person_id", "role"), (CUSTOMER, REQUESTER.person_id, "authorized_user"),
                      *((CUSTOMER, p.person_id, "direct_employee") for p in delegates if p.employee)],
        "grants.csv": [("account_id", "person_id", "access_level", "status"),
                       *((ACCOUNTS[0], p.person_id, "Read Only", "active") for p in delegates),
                       *((ACCOUNTS[0], p.person_id, "Read Only", "invited") for p in invited_only)],
    }
    if submitter_pub is not None:
        files["submitters.csv"] = [("submitter_id", "name", "email", "public_key", "status"),
                                   ("S1", "Account Manager", "am@utility.example", submitter_pub.decode().strip(),
                                    "active")]
    for name, rows in files.items():
        with open(folder / name, "w", newline="", encoding="utf-8") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)
    return folder


# ----------------------------------------------------------------------------------------- workbooks


def lines_for(person: Person, count: int = 15, start: int = 1) -> list[tuple[str, str]]:
    """(account, level) lines over ACCOUNTS[start:start+count]; no Full for a third party."""
    levels = LEVELS if person.employee else LEVELS[1:]
    return [(ACCOUNTS[start + k], levels[k % len(levels)]) for k in range(count)]


def workbook(requester: Person, person: Person, lines: list[tuple[str, str]], *,
             extra_sheet: str | None = None) -> bytes:
    """A filled Delegate User Form (openpyxl), the Account IDs written as text."""
    return _workbook(requester.cells, person.cells, tuple(lines), extra_sheet)


@functools.lru_cache(maxsize=256)
def _workbook(requester: tuple, person: tuple, lines: tuple, extra_sheet: str | None) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = FORM_SHEET
    ws.append(list(TITLES))
    for r, (account, level) in enumerate(lines, start=2):
        for c, value in enumerate([*requester, *person, "Mobile", account, level], start=1):
            cell = ws.cell(r, c, value)
            cell.data_type = "s"
    wb.create_sheet(EXAMPLE_SHEET)
    if extra_sheet:
        wb.create_sheet(extra_sheet)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def seal(plaintext: bytes, keys: Keys, *, signed: bool = False, to_other_key: bool = False) -> bytes:
    from loaders.envelope import seal as _seal

    return _seal(plaintext, keys.other_pub if to_other_key else keys.intake_pub,
                 keys.signing_key if signed else None)


# ------------------------------------------------------------------------------------------- drops


@dataclass
class Drop:
    """One file dropped in the inbox and what it must come to."""

    name: str
    data: bytes
    status: str  # applied | rejected | quarantined | duplicate | "applied|duplicate" (one of a pair)
    codes: tuple[str, ...] = ()
    person: Person | None = None  # the delegate whose grants an applied form sets
    lines: tuple[tuple[str, str], ...] = ()
    plaintext: bytes | None = None
    mail_to: str | None = None  # who gets its email ("" for none)

    @property
    def key(self) -> str:
        return f"inbox/{self.name}"


@dataclass
class World:
    root: Path
    keys: Keys
    db_url: str
    directory: Path
    delegates: list[Person]
    drops: list[Drop] = field(default_factory=list)
    ops: str = OPS
    inbox_url: str | None = None  # s3://...; else the folder root/inbox

    @property
    def inbox_root(self) -> Path:
        return self.root / "inbox"

    @property
    def url(self) -> str:
        return self.inbox_url or str(self.inbox_root)

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a `delegation run` over this world."""
        env = {
            "DELEGATION_INBOX_URL": self.url,
            "DELEGATION_DB_URL": self.db_url,
            "DELEGATION_PRIVATE_KEY_FILE": str(self.keys.intake_key),
            "DELEGATION_OUTBOX_DIR": str(self.outbox),
            "DELEGATION_OPS_EMAIL": self.ops,
        }
        env.update(extra)
        return env

    def settings(self, **overrides):
        from flows.settings import Settings

        base = {"inbox_url": self.url, "db_url": self.db_url,
                "private_key_files": (str(self.keys.intake_key),), "outbox_dir": str(self.outbox),
                "ops_email": self.ops}
        return Settings(**{**base, **overrides})

    def drop(self, *drops: Drop, inbox=None) -> None:
        """Put the files in inbox/, received one second apart in the order given."""
        inbox = inbox or self.open_inbox()
        start = time.time() - 3600 - len(self.drops)
        for d in drops:
            inbox.put(d.key, d.data)
            if hasattr(inbox, "root"):
                when = start + len(self.drops)
                os.utime(inbox.root / d.key, (when, when))
            self.drops.append(d)

    def open_inbox(self):
        from loaders.inbox import open_inbox

        inbox = open_inbox(self.url)
        inbox.ensure_layout()
        return inbox


def make_world(root: Path, db_url: str, *, delegates: int = 40, submitter: bool = False,
               invited_only: tuple[Person, ...] = (), inbox_url: str | None = None) -> World:
    """Keys, a directory loaded into `db_url`, an empty inbox and outbox under `root`."""
    from loaders.store import Store

    keys = make_keys(root / "keys")
    people = [delegate(i) for i in range(1, delegates + 1)]
    directory = write_directory(root / "directory", people, invited_only=invited_only,
                                submitter_pub=keys.signing_pub if submitter else None)
    store = Store.connect(db_url)
    try:
        store.load_directory(directory)
    finally:
        store.dispose()
    world = World(root, keys, db_url, directory, people, inbox_url=inbox_url)
    world.open_inbox()  # creates the layout
    return world


def valid_drop(world: World, i: int, *, name: str | None = None, person: Person | None = None,
               signed: bool = False) -> Drop:
    person = person or world.delegates[i - 1]
    lines = lines_for(person)
    plain = workbook(REQUESTER, person, lines)
    return Drop(name or f"valid-{i:02d}.xlsx.sealed", seal(plain, world.keys, signed=signed), "applied",
                person=person, lines=tuple(lines), plaintext=plain, mail_to=REQUESTER.email)


def resealed(world: World, original: Drop, name: str) -> Drop:
    """The same workbook sealed again (other bytes) under another name: one of the pair is a duplicate."""
    original.status = "applied|duplicate"
    return Drop(name, seal(original.plaintext, world.keys), "applied|duplicate", person=original.person,
                lines=original.lines, plaintext=original.plaintext, mail_to=REQUESTER.email)


def mixed_inbox(world: World, *, valid: int = 30) -> list[Drop]:
    """A mixed inbox (valid, invalid, directory-refused, duplicate, hostile): over 50 files."""
    drops = [valid_drop(world, i) for i in range(1, valid + 1)]
    drops += [resealed(world, drops[i], f"resent-{i:02d}.xlsx.sealed") for i in range(4)]
    k = valid + 1  # delegates from here on are not used by the valid forms
    bad_level = [*lines_for(world.delegates[k - 1])]
    bad_level[3] = (bad_level[3][0], "Superuser")
    rejected = [
        ("bad-level.xlsx.sealed", workbook(REQUESTER, world.delegates[k - 1], bad_level), ("ACCESS_LEVEL_INVALID",),
         REQUESTER.email),
        ("too-few.xlsx.sealed", workbook(REQUESTER, world.delegates[k], lines_for(world.delegates[k], 14)),
         ("TOO_FEW_ACCOUNTS",), REQUESTER.email),
        ("closed.xlsx.sealed", workbook(REQUESTER, world.delegates[k + 1],
                                        [*lines_for(world.delegates[k + 1], 14), (CLOSED, "High")]),
         ("ACCOUNT_CLOSED",), REQUESTER.email),
        ("stranger.xlsx.sealed", workbook(STRANGER, world.delegates[k + 2], lines_for(world.delegates[k + 2])),
         ("REQUESTER_UNKNOWN",), world.ops),
        ("not-invited.xlsx.sealed", workbook(REQUESTER, STRANGER, lines_for(STRANGER)),
         ("DELEGATE_NOT_INVITED",), REQUESTER.email),
        ("sample-blank.xlsx.sealed", sample("invalid_CELL_BLANK.xlsx"), ("CELL_BLANK",), world.ops),
        ("sample-formula.xlsx.sealed", sample("invalid_CELL_FORMULA.xlsx"), ("CELL_FORMULA",), world.ops),
        ("sample-extra-sheet.xlsx.sealed", sample("invalid_SHEET_EXTRA.xlsx"), ("SHEET_EXTRA",), world.ops),
    ]
    drops += [Drop(name, seal(plain, world.keys), "rejected", codes, plaintext=plain, mail_to=to)
              for name, plain, codes, to in rejected]
    drops += hostile_drops(world)
    random.Random(5).shuffle(drops)
    return drops


def hostile_drops(world: World, *, too_large: bool = False) -> list[Drop]:
    """Files that are not forms, each quarantined with its file-level code (and the ops told)."""
    plain = workbook(REQUESTER, world.delegates[0], lines_for(world.delegates[0]))
    out = [
        ("unsealed.xlsx", plain, "NOT_ENCRYPTED"),
        ("unsealed.csv.sealed", b"Requester First Name,Requester Last Name\nRita,Reyes\n", "NOT_ENCRYPTED"),
        ("garbage.sealed", random.Random(1).randbytes(3000), "DECRYPT_FAILED"),
        ("empty.sealed", b"", "DECRYPT_FAILED"),
        ("other-key.xlsx.sealed", seal(plain, world.keys, to_other_key=True), "DECRYPT_FAILED"),
        ("sealed-csv.xlsx.sealed", seal(b"a,b,c\n1,2,3\n", world.keys), "NOT_XLSX"),
        ("sealed-macro.xlsx.sealed", seal(sample("file_NOT_XLSX_macro.xlsx"), world.keys), "NOT_XLSX"),
        ("image.png.sealed", b"\x89PNG\r\n\x1a\n" + random.Random(2).randbytes(500), "DECRYPT_FAILED"),
    ]
    if too_large:
        out.append(("huge.sealed", b"DLGS" + bytes(10 * 1024 * 1024 + 10), "FILE_TOO_LARGE"))
    return [Drop(name, data, "quarantined", (code,), mail_to=world.ops) for name, data, code in out]


# ------------------------------------------------------------------------------------- inspection


def end_places(where: World | Path) -> dict[str, list[str]]:
    """Each dropped file's name -> the places (inbox, archive/<status>, quarantine) it lies in."""
    from loaders.inbox import open_inbox

    inbox = where.open_inbox() if isinstance(where, World) else open_inbox(str(where))
    places: dict[str, list[str]] = {}
    for key in inbox.keys(""):
        place, name = key.rsplit("/", 1)
        places.setdefault(name, []).append(place)
    return places


def emails(outbox: Path) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(outbox.glob("*.eml"))]


def expected_grants(world: World, applied: list[Drop]) -> set[tuple]:
    """(account_id, person_id, email, level, status, form_sha256 or '') after the applied forms."""
    from flows.pipeline import sha256

    rows = {(ACCOUNTS[0], p.person_id, p.email, "Read Only", "active", "") for p in world.delegates}
    for d in applied:
        assert d.person is not None and d.plaintext is not None
        for account, level in d.lines:
            rows.discard((account, d.person.person_id, d.person.email, "Read Only", "active", ""))
            rows.add((account, d.person.person_id, d.person.email, level, "active", sha256(d.plaintext)))
    return rows


def exported_grants(db_url: str) -> set[tuple]:
    """`delegation grants export` as a set of rows."""
    from click.testing import CliRunner

    from flows.cli import cli

    result = CliRunner().invoke(cli, ["grants", "export", "--db", db_url])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    return {(r["account_id"], r["person_id"], r["email"], r["access_level"], r["status"], r["form_sha256"])
            for r in rows}


# ------------------------------------------------------------------------------- `delegation run`


def run_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from flows.cli import main; main()", *args]


def start_run(env: dict[str, str], api: PrefectApi, *args: str, log: Path) -> subprocess.Popen:
    """`delegation run ARGS` in a child process: its own environment, the shared Prefect API.

    Its stdout and stderr go to `log` (read them with `output(log)` once it has exited).
    """
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DELEGATION_", "PREFECT_", "AWS_"))}
    full.update({
        "PREFECT_HOME": str(api.home / "client"),
        "PREFECT_API_URL": api.url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PYTHONPATH": str(REPO),
        # A run that has to wait does not wait long here (production: see flows.pipeline.Tuning).
        "DELEGATION_RETRY_DELAYS": "0.2",
        "DELEGATION_CONNECT_DELAYS": "0.2",
    })
    full.update(env)
    with open(log, "wb") as out:
        return subprocess.Popen(run_command("run", *args), env=full, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)


def run(env: dict[str, str], api: PrefectApi, *args: str, log: Path, timeout: float = 120) -> tuple[int, str]:
    """`delegation run ARGS` to its end: (exit code, its output)."""
    proc = start_run(env, api, *args, log=log)
    proc.wait(timeout)
    return proc.returncode, output(log)


def output(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")


# ------------------------------------------------------------------------ a Prefect server per worker


@dataclass(frozen=True)
class PrefectApi:
    url: str
    home: Path

    def env(self) -> dict[str, str]:
        return {"PREFECT_API_URL": self.url}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prefect_server(home: Path):
    """`prefect server start` (API only, no services) on a free port; yields a PrefectApi.

    One server per test process: each `delegation run` then connects to it instead of starting a
    temporary one of its own (5-11 s each), and a run killed by a test leaves no server behind.
    """
    import signal
    import urllib.request

    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_SERVER_LOGGING_LEVEL": "WARNING"})
    log = open(home / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                             "--port", str(port), "--no-ui", "--no-services", "--analytics-off"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Prefect server did not start: see {home / 'server.log'}")
            time.sleep(0.25)
        yield PrefectApi(url, home)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the server and its uvicorn child: our own group
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


_SERVERS: dict[str, PrefectApi] = {}


@pytest.fixture(scope="session", name="prefect_api")
def fixture_prefect_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> PrefectApi:
    """A Prefect API server shared by the `delegation run` children of this test process.

    Started once per process (xdist worker), whichever test module asks first: a fixture imported
    into several modules would otherwise be one "session" fixture per module.
    """
    if "api" not in _SERVERS:
        server = _prefect_server(tmp_path_factory.mktemp("prefect-home"))
        _SERVERS["api"] = next(server)
        request.config.add_cleanup(lambda: next(server, None))
    return _SERVERS["api"]


@contextlib.contextmanager
def smtpd_on(handler, port: int):
    """aiosmtpd on a given port: the one a run failed to reach, now back."""
    from aiosmtpd.controller import Controller

    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=5.0)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


# ------------------------------------------------------------------------------------ in-process


def deps_for(world: World, *, tuning=None, staged: bool = False, **settings):
    """Deps over the world, for calling flows.pipeline directly (no Prefect).

    Files go one after the other, each to its end state before the next, unless `staged`: then every
    batch is judged ahead by two worker processes and delivered and archived by the finisher thread.
    """
    from flows.pipeline import Deps, Tuning

    stages = {"judge_workers": 2, "staged_min_files": 1} if staged else {"judge_workers": 0, "staged_min_files": 0}
    return Deps.build(world.settings(**settings), tuning or Tuning(mail_retry_seconds=0, retry_delays=(),
                                                                   connect_delays=(), **stages))


def waiting(deps) -> list:
    return sorted(deps.inbox.waiting(), key=lambda i: (i.received_at, i.key))


def outbox_rows(db_url: str) -> list[dict]:
    """Every outbox row with the inbox key of its submission."""
    import sqlalchemy as sa

    from loaders.store.schema import outbox, submissions

    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(outbox.c.message_id, outbox.c.kind, outbox.c.recipients, outbox.c.status,
                          outbox.c.attempts, outbox.c.message, submissions.c.object_key)
                .select_from(outbox.outerjoin(submissions, outbox.c.submission_id == submissions.c.id))
            ).all()
    finally:
        engine.dispose()
    return [dict(r._mapping) for r in rows]


def table_rows(db_url: str, table: str) -> list[dict]:
    import sqlalchemy as sa

    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(f"select * from {table}")).all()]
    finally:
        engine.dispose()


def place_of(status: str) -> str:
    return "quarantine" if status == "quarantined" else f"archive/{status}"


def assert_exactly_once(world: World, entries: list[dict]) -> None:
    """The end of every run over `world`: each file in exactly one report entry and one end place,
    with its codes; grants exactly those of the applied forms; one email per non-duplicate, sent and
    written once under its Message-ID; no audit row of a form that was not applied; no live claim."""
    from loaders.mail import eml_name

    keys = Counter(e["key"] for e in entries)
    assert keys == Counter(d.key for d in world.drops), "each file in exactly one report entry"
    entry = {e["key"]: e for e in entries}
    places = end_places(world)
    for d in world.drops:
        status = entry[d.key]["status"]
        assert status in d.status.split("|"), (d.name, status, entry[d.key]["errors"])
        if d.codes:
            assert {e["code"] for e in entry[d.key]["errors"]} == set(d.codes), d.name
        assert places.get(d.name) == [place_of(status)], (d.name, places.get(d.name))
    pairs = Counter(d.plaintext for d in world.drops if d.status == "applied|duplicate")
    for plain in pairs:
        got = sorted(entry[d.key]["status"] for d in world.drops if d.plaintext == plain)
        assert got == ["applied", *["duplicate"] * (len(got) - 1)], got

    applied = [d for d in world.drops if entry[d.key]["status"] == "applied"]
    assert exported_grants(world.db_url) == expected_grants(world, applied)
    audited = {r["form_sha256"] for r in table_rows(world.db_url, "audit")}
    assert audited == {entry[d.key]["sha256"] for d in applied}

    rows = outbox_rows(world.db_url)
    form_mail = [r for r in rows if r["kind"] != "dead-letter"]
    assert Counter(r["object_key"] for r in form_mail) == Counter(
        d.key for d in world.drops if entry[d.key]["status"] != "duplicate"), "one email per form, none for duplicates"
    for r in form_mail:
        d = next(d for d in world.drops if d.key == r["object_key"])
        assert r["status"] == "sent", r
        assert json.loads(r["recipients"]) == [d.mail_to], (d.name, r["recipients"])
    written = sorted(p.name for p in world.outbox.glob("*.eml"))
    assert written == sorted(eml_name(r["message_id"]) for r in rows if r["status"] == "sent")
    ids = [m["Message-ID"] for m in emails(world.outbox)]
    assert len(ids) == len(set(ids)) == len(written)
    assert not list(world.outbox.glob(".*")), "no half-written email left behind"

    subs = table_rows(world.db_url, "submissions")
    assert all(s["archived_at"] is not None for s in subs), "no claim left live"
