"""The pipeline's throughput against the floor: fixed cost, marginal cost per form, memory, stages.

    .venv/bin/python benchmarks/pipeline_bench.py [-n 200] [--db sqlite|postgresql] [--workers 1[,2]]
    .venv/bin/python benchmarks/pipeline_bench.py --latency 30 --drops 20      # drop -> email, p95

What it does, in a fresh scratch folder (kept with --keep):
1. a directory: one business customer with 5,000 accounts, its authorized user (the requester) and
   N delegates, each a direct employee who accepted a first invitation (an active grant);
2. N full forms (500 accounts each, the official template filled as a person's copy, levels
   Full/High/Read Only), one per delegate, so every form is applied (500 new grants), none a
   duplicate; sealed (signed by a known submitter) into a fresh folder inbox;
3. measurements, each in a new process timed from spawn to exit (so Python start-up, imports, the
   Prefect client and its temporary server, and their shutdown are all counted):
   - the pipeline (flows.process_inbox.process_inbox, as `delegation run` calls it) over an empty
     inbox (the fixed cost) and over the N forms; W processes at once with --workers W;
   - the floor: one process that only reads the same plaintext workbooks with python-calamine,
     over none and over the N;
   each --repeat times (medians reported; the database and inbox are fresh for every N run).
4. prints the fixed cost, the marginal cost per form ((run N - run 0) / N), forms/min and
   grants/min, the floor's and the ratio, peak RSS, and where the time went by stage (timed by
   wrappers installed in the measured process only; the production code is not touched).

Each worker process gets its own PREFECT_HOME under the scratch folder (warmed once, unmeasured):
an ephemeral Prefect server per process, as `delegation run` has. 2 cores shared: run it more than
once, watch `uptime`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve()
PG_ADMIN = os.environ.get("DELEGATION_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

ACCOUNTS_PER_FORM = 500
BLOCKS = 10  # the forms cycle over 10 blocks of 500 accounts
FIRST_ACCOUNT = "0900000000"  # every delegate's accepted first invitation (not on any form)
REQUESTER = ("Lan", "Nguyễn", "lan.nguyen@bench-foods.example", "4155550101")
DELEGATE = ("Alex", "Rivera", "4155550104")  # one name and phone; the email tells delegates apart
PLACEHOLDER = "d000000@bench-consult.example"  # same length as every delegate's email
LEVELS = ("Full", "High", "Read Only")
STAGES = ("fetch", "claim", "open", "read", "validate", "judging wait", "directory check", "apply", "mail compose",
          "mail deliver", "archive")


def account(n: int) -> str:
    return f"09{n:08d}"


def delegate_email(i: int) -> str:
    return f"d{i:06d}@bench-consult.example"


# ============================================================================ building the inputs


def write_directory(folder: Path, n: int, signing_public: bytes) -> None:
    """directory.md's CSVs: customer B1 (business), 5,000 + 1 accounts, requester, n delegates."""
    folder.mkdir(parents=True)
    (folder / "customers.csv").write_text("customer_id,name,customer_type\nB1,Bench Foods,business\n", encoding="utf-8")
    accounts = [FIRST_ACCOUNT] + [account(k) for k in range(1, BLOCKS * ACCOUNTS_PER_FORM + 1)]
    (folder / "accounts.csv").write_text(
        "account_id,customer_id,status\n" + "".join(f"{a},B1,active\n" for a in accounts), encoding="utf-8")
    first, last, email, phone = REQUESTER
    people = [f"P0,{first},{last},{email},{phone}"]
    people += [f"D{i},{DELEGATE[0]},{DELEGATE[1]},{delegate_email(i)},{DELEGATE[2]}" for i in range(n)]
    (folder / "people.csv").write_text("person_id,first_name,last_name,email,phone\n" + "\n".join(people) + "\n",
                                       encoding="utf-8")
    roles = ["B1,P0,authorized_user"] + [f"B1,D{i},direct_employee" for i in range(n)]
    (folder / "roles.csv").write_text("customer_id,person_id,role\n" + "\n".join(roles) + "\n", encoding="utf-8")
    grants = [f"{FIRST_ACCOUNT},D{i},Read Only,active" for i in range(n)]
    (folder / "grants.csv").write_text("account_id,person_id,access_level,status\n" + "\n".join(grants) + "\n",
                                       encoding="utf-8")
    (folder / "submitters.csv").write_text(
        "submitter_id,name,email,public_key,status\n"
        f'S1,Bench Account Manager,am@utility.invalid,"{signing_public.decode().strip()}",active\n',
        encoding="utf-8")


def base_forms() -> list[bytes]:
    """One full form per block of accounts, for the placeholder delegate (the template, filled)."""
    sys.path.insert(0, str(ROOT / "sample_forms"))
    from make_samples import form_bytes  # the samples' own builder: template read back, then filled

    out = []
    for block in range(BLOCKS):
        rows = [(*REQUESTER[:3], _dashed(REQUESTER[3]), DELEGATE[0], DELEGATE[1], PLACEHOLDER, _dashed(DELEGATE[2]),
                 "Mobile", account(block * ACCOUNTS_PER_FORM + k), LEVELS[k % 3])
                for k in range(1, ACCOUNTS_PER_FORM + 1)]
        out.append(form_bytes(rows))
    return out


def _dashed(phone: str) -> str:
    return f"{phone[:3]}-{phone[3:6]}-{phone[6:]}"


def form_for(base: bytes, i: int) -> bytes:
    """The block's form with delegate i's email in place of the placeholder (the zip rewritten)."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.startswith("xl/worksheets/"):
                data = data.replace(PLACEHOLDER.encode(), delegate_email(i).encode())
            dst.writestr(info, data)
    return out.getvalue()


class Scenario:
    """The scratch folder: keys, directory, plaintext and sealed forms, a loaded database template."""

    def __init__(self, work: Path, n: int, db: str, pg_admin: str):
        self.work, self.n, self.db, self.pg_admin = work, n, db, pg_admin
        self.plain = work / "plain"
        self.sealed = work / "sealed"
        self.empty = work / "empty"
        self.key = work / "keys" / "intake.key"
        self._pg_names: list[str] = []

    def build(self) -> None:
        sys.path.insert(0, str(ROOT))
        from loaders.envelope import generate_intake_keypair, generate_signing_keypair, seal

        started = time.perf_counter()
        self.key.parent.mkdir(parents=True)
        private, public = generate_intake_keypair()
        self.key.write_bytes(private)
        self.key.chmod(0o600)
        signing, signing_public = generate_signing_keypair()
        write_directory(self.work / "directory", self.n, signing_public)
        self.plain.mkdir()
        self.sealed.mkdir()
        self.empty.mkdir()
        bases = base_forms()
        now = time.time() - 3600
        for i in range(self.n):
            data = form_for(bases[i % BLOCKS], i)
            (self.plain / f"form-{i:06d}.xlsx").write_bytes(data)
            target = self.sealed / f"form-{i:06d}.xlsx.sealed"
            target.write_bytes(seal(data, public, signing))
            os.utime(target, (now + i / 1000, now + i / 1000))  # distinct receipt times, in order
        self.template_db = self._load_template_db()
        print(f"  built {self.n} sealed forms and the directory in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)

    def _load_template_db(self) -> str:
        from loaders.store import Store

        url = f"sqlite:///{self.work / 'template.db'}" if self.db == "sqlite" else self._create_pg_db()
        store = Store.connect(url)
        store.load_directory(self.work / "directory")
        store.dispose()
        return url

    # a fresh database and inbox for each measured run
    def fresh(self, tag: str, forms: bool) -> dict:
        place = self.work / "runs" / tag
        inbox = place / "inbox"
        (inbox / "inbox").mkdir(parents=True)
        if forms:
            for path in sorted(self.sealed.iterdir()):
                os.link(path, inbox / "inbox" / path.name)  # same bytes, same mtime: cheap and faithful
        if self.db == "sqlite":
            db = place / "delegation.db"
            import sqlite3

            src = sqlite3.connect(self.template_db.removeprefix("sqlite:///"))
            src.execute("VACUUM INTO ?", (str(db),))
            src.close()
            url = f"sqlite:///{db}"
        else:
            url = self._create_pg_db(template=self.template_db.rsplit("/", 1)[1])
        return {"inbox": str(inbox), "db": url, "outbox": str(place / "outbox"), "place": str(place)}

    def _create_pg_db(self, template: str | None = None) -> str:
        import sqlalchemy as sa

        name = f"delegation_bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(self.pg_admin, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
        admin.dispose()
        self._pg_names.append(name)
        return self.pg_admin.rsplit("/", 1)[0] + "/" + name

    def cleanup(self) -> None:
        if not self._pg_names:
            return
        import sqlalchemy as sa

        admin = sa.create_engine(self.pg_admin, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in self._pg_names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# ============================================================================ measuring processes


def spawn(args: list[str], env: dict, cpus: set[int] | None = None) -> subprocess.Popen:
    """The measured process (on `cpus` only, with what it starts, when given); its output goes to
    temporary files (a full pipe would stall it)."""
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # noqa: SIM115 - closed by reap()
    pin = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))
    proc = subprocess.Popen([sys.executable, str(HERE), *args], env=env, cwd=ROOT, stdout=out, stderr=err,
                            preexec_fn=pin)
    proc.outputs = (out, err)
    return proc


def reap(proc: subprocess.Popen, block: bool = True) -> tuple[int, int, str, str] | None:
    """(exit status, peak RSS in KiB of the process tree's largest member, stdout, stderr); None if it
    is still running and `block` is False."""
    pid, status, usage = os.wait4(proc.pid, 0 if block else os.WNOHANG)
    if pid == 0:
        return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    texts = []
    for f in proc.outputs:
        f.seek(0)
        texts.append(f.read().decode(errors="replace"))
        f.close()
    return proc.returncode, usage.ru_maxrss, texts[0], texts[1]


def timed_processes(argvs: list[list[str]], envs: list[dict], cpus: list[set[int] | None] | None = None) -> dict:
    """Start the processes together; wall time until the last has exited, and each one's result."""
    started = time.perf_counter()
    procs = [spawn(a, e, c) for a, e, c in zip(argvs, envs, cpus or [None] * len(argvs), strict=True)]
    results = []
    for p in procs:
        code, rss, out, err = reap(p)
        if code != 0:
            raise RuntimeError(f"measured process failed ({code}):\n{err[-3000:]}")
        stats = json.loads(out.strip().splitlines()[-1])
        stats["tree_maxrss_kib"] = rss
        results.append(stats)
    return {"wall": time.perf_counter() - started, "procs": results}


# What the measured processes get besides their PREFECT_HOME: --variant and --prefect-api.
CHILD_EXTRA_ENV: dict[str, str] = {}
PIN_CPUS: list[bool] = [False]  # --pin: pipeline process w runs on CPU w (mod the CPUs), with its judging workers


def child_env(prefect_home: Path, key: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DELEGATION_"))}
    env.update(PREFECT_HOME=str(prefect_home), DELEGATION_PRIVATE_KEY_FILE=str(key), PYTHONPATH=str(ROOT))
    env.update(CHILD_EXTRA_ENV)
    return env


# ============================================================================ Prefect's API server


def run_pipeline(sc: Scenario, workers: int, forms: bool, tag: str, profile: str | None = None) -> dict:
    place = sc.fresh(tag, forms)
    argvs, envs = [], []
    for w in range(workers):
        spec = {"inbox": place["inbox"], "db": place["db"], "outbox": place["outbox"],
                "profile": f"{profile}-w{w}" if profile else None}
        argvs.append(["--child-pipeline", json.dumps(spec)])
        envs.append(child_env(sc.work / f"prefect-home-{w}", sc.key))
    cpus = sorted(os.sched_getaffinity(0))
    result = timed_processes(argvs, envs, [{cpus[w % len(cpus)]} for w in range(workers)] if PIN_CPUS[0] else None)
    result["forms"] = sum(p["forms"] for p in result["procs"])
    result["statuses"] = {}
    for p in result["procs"]:
        for s, c in p["counts"].items():
            result["statuses"][s] = result["statuses"].get(s, 0) + c
    waiting = list(Path(place["inbox"], "inbox").iterdir())
    if forms and (waiting or result["statuses"].get("applied", 0) != sc.n):
        raise RuntimeError(f"not every form was applied: {result['statuses']}, {len(waiting)} left in the inbox")
    shutil.rmtree(place["place"], ignore_errors=True)  # keep the disk small between runs
    return result


def run_floor(sc: Scenario, forms: bool) -> dict:
    folder = sc.plain if forms else sc.empty
    return timed_processes([["--child-floor", str(folder)]], [child_env(sc.work / "prefect-home-0", sc.key)])


# ============================================================================ the measured processes


def child_floor(folder: str) -> None:
    """Only read the plaintext workbooks' form sheets with python-calamine: the floor."""
    import io
    import resource

    from python_calamine import CalamineWorkbook

    rows = 0
    for path in sorted(Path(folder).iterdir()):
        data = path.read_bytes()
        rows += len(CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_name("Delegate Form").to_python())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"rows": rows, "self_maxrss_kib": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}))


class StageClock:
    """Exclusive time per stage: a stage inside another is not counted twice."""

    def __init__(self):
        self.total: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._local = threading.local()

    def wrap(self, owner, name: str, stage: str) -> None:
        original = getattr(owner, name)
        clock = self

        def timed(*args, **kwargs):
            stack = getattr(clock._local, "stack", None)
            if stack is None:
                stack = clock._local.stack = []
            stack.append([0.0, 0.0])
            started, cpu_started = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
                inner, inner_cpu = stack.pop()
                clock.total[stage] = clock.total.get(stage, 0.0) + elapsed - inner
                clock.cpu[stage] = clock.cpu.get(stage, 0.0) + cpu - inner_cpu
                clock.calls[stage] = clock.calls.get(stage, 0) + 1
                if stack:
                    stack[-1][0] += elapsed
                    stack[-1][1] += cpu

        timed.__wrapped__ = original
        setattr(owner, name, timed)


class _SqlClock:
    """--sql: wall time and count of each kind of statement (and of commits), as the client sees
    them: the database's own work plus a round trip (and, on a busy machine, waiting for a CPU)."""

    def __init__(self):
        import sqlalchemy as sa
        from sqlalchemy.engine import default

        self.totals: dict[str, list[float]] = {}
        self._local = threading.local()
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", self._before)
        sa.event.listen(sa.engine.Engine, "after_cursor_execute", self._after)
        commit = default.DefaultDialect.do_commit

        def do_commit(dialect, dbapi_connection):
            started = time.perf_counter()
            try:
                return commit(dialect, dbapi_connection)
            finally:
                self._add("COMMIT", time.perf_counter() - started)

        default.DefaultDialect.do_commit = do_commit

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        self._local.started = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        self._add(self.kind(statement), time.perf_counter() - self._local.started)

    def _add(self, kind: str, seconds: float) -> None:
        entry = self.totals.setdefault(kind, [0.0, 0])
        entry[0] += seconds
        entry[1] += 1

    _TABLE = re.compile(r"\b(?:INTO|FROM|UPDATE)\s+\"?(\w+)", re.IGNORECASE)

    @classmethod
    def kind(cls, statement: str) -> str:
        """'INSERT grants', 'SELECT accounts', ...: the verb and the first table named."""
        words = statement.split(None, 1)
        verb = words[0].upper() if words else "?"
        table = cls._TABLE.search(statement)
        return f"{verb} {table.group(1) if table else ''}".strip()


def child_pipeline(spec_text: str) -> None:
    """One `delegation run`: the process-inbox flow over the inbox, with stage clocks installed."""
    import resource

    spec = json.loads(spec_text)
    t0 = time.perf_counter()
    variants = set(filter(None, os.environ.get("PIPELINE_BENCH_VARIANTS", "").split(",")))
    from flows.cli.pipeline_commands import preload, quiet_prefect

    quiet_prefect()  # what `delegation run` sets before importing the flow
    if "no-api-logs" in variants:
        os.environ["PREFECT_LOGGING_TO_API_ENABLED"] = "false"
    import contextlib

    from flows.prefect_api import temporary_api

    api_block = contextlib.ExitStack()  # as `delegation run`: its temporary API server first (none if external)
    api = api_block.enter_context(temporary_api())
    _EARLY_SERVER_PID[0] = api.process.pid if api.process else None
    clock = StageClock()
    w = clock.wrap

    def inbox(m):
        w(m.FolderInbox, "fetch", "fetch")
        w(m.FolderInbox, "archive", "archive")

    def intake(m):
        w(m, "claim", "claim")
        w(m, "finish", "apply")
        w(m, "requester_login", "mail compose")
        w(m, "add_mail", "mail compose")
        w(m, "mark_archived", "archive")

    def store(m):
        w(m, "apply_form", "apply")
        import loaders.store.apply as apply
        import loaders.store.store as store_module

        w(apply, "load_snapshot", "directory check")
        w(apply, "check", "directory check")
        w(store_module.UnitOfWork, "commit", "apply")

    def mail(m):
        for name in ("compose_completed", "completed", "compose_rejected", "compose_rejected_to_ops",
                     "compose_quarantined", "as_bytes"):
            w(m, name, "mail compose")
        w(m.compose.CompletedEmail, "as_bytes", "mail compose")

    # Wrappers go in as each module is first imported, so that what the pipeline imports lazily
    # (pandas, pandera, openpyxl with the first form) still costs where it would.
    sys.meta_path.insert(0, _AfterImport({
        "loaders.inbox": inbox,
        "loaders.store.intake": intake,
        "loaders.store": store,
        "loaders.envelope": lambda m: w(m, "open_sealed", "open"),
        "loaders.workbook": lambda m: w(m, "read_workbook", "read"),
        "validators": lambda m: w(m, "validate_sheet", "validate"),
        # judged ahead in worker processes: what the run waits for them (their CPU is counted apart)
        "flows.judge": lambda m: (w(m.Judges, "_result", "judging wait"), _watch_workers(m.Judges)),
        "loaders.mail": mail,
        "loaders.marked": lambda m: w(m, "mark_workbook", "mail compose"),
        "prefect.server.api.server": lambda m: w(m.SubprocessASGIServer, "start", "prefect server start"),
    }))
    import flows.pipeline as pipeline
    import flows.process_inbox as process_inbox

    preload()  # as `delegation run`, while its server boots
    sql = _SqlClock() if os.environ.get("PIPELINE_BENCH_SQL") else None

    t_imported = time.perf_counter()
    w(pipeline, "deliver_pending", "mail deliver")
    w(process_inbox, "deliver_pending", "mail deliver")
    w(pipeline.Deps, "build", "connect")

    body: dict[str, float] = {}
    run_once = process_inbox.run_once

    def timed_body(*args, **kwargs):
        sys.meta_path.insert(0, _ImportTimer(clock))  # modules the pipeline imports on first use
        body["server_cpu_start"] = _server_cpu()  # read outside the timed body (a scan of /proc)
        body["postgres_cpu_start"] = _postgres_cpu()
        body["start"] = time.perf_counter()
        body["cpu_start"] = time.process_time()
        try:
            return run_once(*args, **kwargs)
        finally:
            body["end"] = time.perf_counter()
            body["cpu_end"] = time.process_time()
            body["server_cpu_end"] = _server_cpu()
            body["postgres_cpu_end"] = _postgres_cpu()

    process_inbox.run_once = timed_body
    profiler = None
    if spec.get("profile"):
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
        profiler.start()
    started = time.perf_counter()
    api.wait_ready()
    waited = time.perf_counter() - started
    if api.process is not None:
        clock.total["prefect server start"] = waited
    t_call = time.perf_counter()
    os.environ["DELEGATION_DB_URL"] = spec["db"]  # as `delegation run` passes it (never a flow parameter)
    result = process_inbox.process_inbox(inbox_url=spec["inbox"], outbox_dir=spec["outbox"])
    t_returned = time.perf_counter()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the judging workers, reaped by now
    if profiler is not None:
        profiler.stop()
        Path(spec["profile"] + ".txt").write_text(profiler.output_text(unicode=True, show_all=False), encoding="utf-8")
        Path(spec["profile"] + ".html").write_text(profiler.output_html(), encoding="utf-8")
        profiler.last_session.save(spec["profile"] + ".pyisession")  # pyinstrument --load FILE -r text
    pid = _server_pid()
    server_hwm = _vm_hwm(pid) if pid else 0
    print(json.dumps({
        "forms": len(result["forms"]),
        "counts": result["counts"],
        "failures": len(result["failures"]),
        "import_s": t_imported - t0,
        "flow_call_s": t_returned - t_call,
        "early_server_wait_s": waited,
        "flow_body_s": body["end"] - body["start"],
        "flow_setup_s": body["start"] - t_call,
        "flow_teardown_s": t_returned - body["end"],
        "flow_body_cpu_s": body["cpu_end"] - body["cpu_start"],
        "server_cpu_s": (body["server_cpu_start"], body["server_cpu_end"]),
        "server_shared": bool(os.environ.get("PIPELINE_BENCH_SERVER_PID")),
        "postgres_cpu_s": (body["postgres_cpu_start"], body["postgres_cpu_end"]),
        "process_cpu_s": time.process_time(),
        "stages": clock.total,
        "stages_cpu": clock.cpu,
        "calls": clock.calls,
        "sql": sql.totals if sql else {},
        "self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "workers_cpu_s": children.ru_utime + children.ru_stime,
        "workers_maxrss_kib": max(_WORKERS_HWM, default=0),
        "server_maxrss_kib": server_hwm,
    }), flush=True)
    api_block.close()  # as `delegation run` leaves its block: Prefect's last logs sent, the server stopped


_WORKERS_HWM: list[int] = []


def _watch_workers(judges_class) -> None:
    """Note each judging worker's peak RSS (VmHWM) just before its pool shuts down.

    Not getrusage(RUSAGE_CHILDREN): a spawned child's maxrss counts the copy of this process it
    was forked from before its exec."""
    close = judges_class.close

    def closing(self):
        pool = self._pool
        if pool is not None:
            _WORKERS_HWM.extend(_vm_hwm(p.pid) for p in list(pool._processes.values()))
        return close(self)

    judges_class.close = closing


class _ImportTimer:
    """Times each module's first execution as the stage 'imports' (pandas with the first form...)."""

    def __init__(self, clock: StageClock):
        self.clock = clock

    def find_spec(self, name, path, target=None):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            holder = type("Holder", (), {"exec_module": staticmethod(spec.loader.exec_module)})
            self.clock.wrap(holder, "exec_module", "imports")
            spec.loader.exec_module = holder.exec_module
        return spec


class _AfterImport:
    """A meta path finder that runs a hook on a module right after it is first executed."""

    def __init__(self, hooks: dict):
        self.hooks = hooks

    def find_spec(self, name, path, target=None):
        if name not in self.hooks:
            return None
        hook = self.hooks.pop(name)
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            hook(module)

        spec.loader.exec_module = exec_module
        return spec


def _server_pid() -> int | None:
    """The Prefect API server this process talks to: its temporary one, or the benchmark's."""
    if os.environ.get("PIPELINE_BENCH_SERVER_PID"):
        return int(os.environ["PIPELINE_BENCH_SERVER_PID"])
    if "prefect.server.api.server" in sys.modules:
        from prefect.server.api.server import SubprocessASGIServer

        server = next((s for s in SubprocessASGIServer._instances.values() if s.server_process), None)
        if server is not None:
            return server.server_process.pid
    return _EARLY_SERVER_PID[0]


_EARLY_SERVER_PID: list[int | None] = [None]


def _proc_stat(path: Path) -> tuple[bytes, list[bytes]] | None:
    """(command name, the fields after it) of /proc/PID/stat: after it, 1 is the parent's pid, 11
    and 12 the process's user and system time, 13 and 14 its reaped children's (in clock ticks)."""
    try:
        head, rest = path.read_bytes().rsplit(b")", 1)
    except (OSError, ValueError):
        return None
    return head.split(b" (", 1)[-1], rest.split()


def _server_cpu() -> float:
    """CPU seconds used so far by the Prefect API server (0 when there is none)."""
    pid = _server_pid()
    stat = None if pid is None else _proc_stat(Path(f"/proc/{pid}/stat"))
    if stat is None:
        return 0.0
    fields = stat[1]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu() -> float:
    """CPU seconds used so far by the PostgreSQL server on this machine, its exited backends included
    (they count in the postmaster's reaped children's time); 0 when the run's database is not
    PostgreSQL or no PostgreSQL process is visible here."""
    if not os.environ.get("DELEGATION_DB_URL", "").startswith("postgresql"):
        return 0.0
    processes = {}
    for path in Path("/proc").glob("[0-9]*/stat"):
        stat = _proc_stat(path)
        if stat is not None and stat[0] == b"postgres":
            processes[path.parent.name.encode()] = stat[1]
    ticks = 0
    for fields in processes.values():
        ticks += int(fields[11]) + int(fields[12])
        if fields[1] not in processes:  # the postmaster: the backends it has reaped
            ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def _vm_hwm(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# ============================================================================ the report


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float]) -> str:
    runs = f"  (runs: {', '.join(f'{v:.2f}' for v in values)})" if len(values) > 1 else ""
    return f"{median(values):7.2f} s{runs}"


def measure(args, sc: Scenario) -> dict:
    n = sc.n
    out = {"n": n, "db": args.db, "repeat": args.repeat, "by_workers": {}, "load_before": os.getloadavg()[0],
           "variant": ", ".join([args.variant, *args.stages, *(["pinned, a CPU each"] if args.pin else [])]).strip(", ")
           or "none", "prefect_api": args.prefect_api}
    # The floor is measured right before each pipeline measurement, so that the two are paired: a
    # shared machine's speed drifts by tens of percent within minutes.
    floor0, floorN = [], []
    out["floor"] = {"zero": [], "n": [], "zero_cpu": [], "n_cpu": []}
    for w in range(max(args.workers)):  # warm each worker's Prefect home (migrations on a fresh one: ~10 s)
        home = sc.work / f"prefect-home-{w}"
        if not home.exists():
            started = time.perf_counter()
            run_pipeline(sc, 1, False, f"warm-{w}") if w == 0 else _warm_one(sc, w)
            print(f"  warmed Prefect home {w} in {time.perf_counter() - started:.1f} s (first run ever)",
                  file=sys.stderr)
    # Worker counts take turns within each repetition, so that they too can be compared run by run.
    for r in range(args.repeat):
        for workers in args.workers:
            runs = out["by_workers"].setdefault(workers, {"zero": [], "full": [], "floor": []})
            floor0.append(run_floor(sc, False))
            floorN.append(run_floor(sc, True))
            runs["floor"].append((floor0[-1]["wall"], floorN[-1]["wall"]))
            profile = str(sc.work / f"profile-w{workers}") if args.profile and r == 0 else None
            tag = f"w{workers}-{{}}-{r}"
            runs["zero"].append(run_pipeline(sc, workers, False, tag.format("zero"), profile and profile + "-empty"))
            runs["full"].append(run_pipeline(sc, workers, True, tag.format("full"), profile and profile + f"-n{n}"))
            print(f"  workers={workers} rep {r + 1}/{args.repeat}: empty {runs['zero'][-1]['wall']:.2f} s, "
                  f"{n} forms {runs['full'][-1]['wall']:.2f} s", file=sys.stderr)
    out["floor"] = {"zero": [f["wall"] for f in floor0], "n": [f["wall"] for f in floorN],
                    "zero_cpu": [f["procs"][0]["cpu_s"] for f in floor0],
                    "n_cpu": [f["procs"][0]["cpu_s"] for f in floorN]}
    return out


def _warm_one(sc: Scenario, w: int) -> None:
    place = sc.fresh(f"warm-{w}", False)
    spec = {"inbox": place["inbox"], "db": place["db"], "outbox": place["outbox"], "profile": None}
    timed_processes([["--child-pipeline", json.dumps(spec)]], [child_env(sc.work / f"prefect-home-{w}", sc.key)])


def report(m: dict) -> str:
    n = m["n"]
    lines = []
    f0, fN = median(m["floor"]["zero"]), median(m["floor"]["n"])
    floor_marginal = (fN - f0) / n
    lines.append(f"pipeline_bench: {n} full forms x {ACCOUNTS_PER_FORM} accounts, {m['db']}, "
                 f"medians of {m['repeat']} run(s); load average {m['load_before']:.2f} before, "
                 f"{os.getloadavg()[0]:.2f} after (1 min), {os.cpu_count()} CPUs; Prefect API "
                 f"{m['prefect_api']}, variant {m['variant']}")
    lines.append("")
    lines.append("floor (python-calamine reading the plaintext workbooks, one process)")
    lines.append(f"  run over none            {spread(m['floor']['zero'])}")
    lines.append(f"  run over {n:<5}           {spread(m['floor']['n'])}")
    lines.append(f"  marginal per form        {floor_marginal * 1000:7.1f} ms")
    base_throughput = None
    for workers, runs in m["by_workers"].items():
        zero = [r["wall"] for r in runs["zero"]]
        full = [r["wall"] for r in runs["full"]]
        fixed, total = median(zero), median(full)
        marginal = (total - fixed) / n
        per_min = 60 / marginal if marginal > 0 else float("inf")
        overall = n / total * 60
        lines.append("")
        lines.append(f"pipeline, {workers} worker process(es) (flows.process_inbox.process_inbox, as `delegation run`)")
        lines.append(f"  fixed cost (empty inbox) {spread(zero)}")
        lines.append(f"  run over {n:<5}           {spread(full)}")
        lines.append(f"  marginal per form        {marginal * 1000:7.1f} ms   = {per_min:,.0f} forms/min, "
                     f"{per_min * ACCOUNTS_PER_FORM:,.0f} grants/min")
        lines.append(f"  overall (fixed included) {overall:,.0f} forms/min, "
                     f"{overall * ACCOUNTS_PER_FORM:,.0f} grants/min")
        ratios = [(f["wall"] - z["wall"]) / (fn - f0) for z, f, (f0, fn) in zip(runs["zero"], runs["full"],
                                                                               runs["floor"], strict=True)]
        lines.append(f"  marginal / floor's       {marginal / floor_marginal:7.2f} x   (paired run by run: median "
                     f"{median(ratios):.2f} x; runs: {', '.join(f'{x:.2f}' for x in ratios)})")
        cpu_full = median([sum(p["flow_body_cpu_s"] for p in r["procs"]) for r in runs["full"]])
        cpu_zero = median([sum(p["flow_body_cpu_s"] for p in r["procs"]) for r in runs["zero"]])
        server_cpu = (median([_server_cpu_of(r["procs"]) for r in runs["full"]])
                      - median([_server_cpu_of(r["procs"]) for r in runs["zero"]])) / n
        judges = median([sum(p.get("workers_cpu_s", 0.0) for p in r["procs"]) for r in runs["full"]]) / n
        floor_cpu = (median(m["floor"]["n_cpu"]) - median(m["floor"]["zero_cpu"])) / n
        parts = {"flow process": (cpu_full - cpu_zero) / n, "its judging workers": judges,
                 "its Prefect server": server_cpu}
        if m["db"] == "postgresql" and any(p["postgres_cpu_s"][1] for r in runs["full"] for p in r["procs"]):
            parts["PostgreSQL"] = (median([_spanned(r["procs"], "postgres_cpu_s") for r in runs["full"]])
                                   - median([_spanned(r["procs"], "postgres_cpu_s") for r in runs["zero"]])) / n
        elif m["db"] == "postgresql":
            lines.append("  (PostgreSQL's own CPU: not measured, its processes are not visible on this machine)")
        lines.append("  CPU per form             " + " + ".join(f"{k} {v * 1000:.1f} ms" for k, v in parts.items())
                     + f" = {sum(parts.values()) * 1000:.1f} ms (floor's: {floor_cpu * 1000:.1f} ms); steadier than "
                     "wall time on a shared machine")
        each = [(f["wall"] - z["wall"]) for z, f in zip(runs["zero"], runs["full"], strict=True)]
        if base_throughput is None:
            base_throughput = (workers, per_min, overall, each)
        else:
            speedups = [b / e if e > 0 else float("inf") for b, e in zip(base_throughput[3], each, strict=True)]
            lines.append(f"  vs {base_throughput[0]} worker(s): marginal throughput "
                         f"x{per_min / base_throughput[1]:.2f} (paired run by run: median x{median(speedups):.2f}; "
                         f"runs: {', '.join(f'x{x:.2f}' for x in speedups)}), "
                         f"overall x{overall / base_throughput[2]:.2f}")
        procs_full = [p for r in runs["full"] for p in r["procs"]]
        procs_zero = [p for r in runs["zero"] for p in r["procs"]]
        rss_flow = max(p["self_maxrss_kib"] for p in procs_full) / 1024
        rss_server = max(p["server_maxrss_kib"] for p in procs_full) / 1024
        rss_flow0 = max(p["self_maxrss_kib"] for p in procs_zero) / 1024
        rss_judge = max(p.get("workers_maxrss_kib", 0) for p in procs_full) / 1024
        lines.append(f"  peak RSS                 flow process {rss_flow:.0f} MB over {n} forms "
                     f"({rss_flow0:.0f} MB over none); each judging worker {rss_judge:.0f} MB at most; "
                     f"its Prefect API server {rss_server:.0f} MB")
        lines += _fixed_split(procs_zero)
        lines += _stage_split(procs_full, procs_zero, n, [r["wall"] for r in runs["full"]], workers)
        lines += _sql_split(procs_full, procs_zero, n, workers)
    return "\n".join(lines)


def _spanned(procs: list[dict], key: str) -> float:
    """A machine-wide CPU counter over the processes measured together: from the first one's start
    to the last one's end (their own intervals overlap)."""
    return max(p[key][1] for p in procs) - min(p[key][0] for p in procs)


def _server_cpu_of(procs: list[dict]) -> float:
    """The Prefect server's CPU over a run: one shared server counted once, else each process's own."""
    if procs[0]["server_shared"]:
        return _spanned(procs, "server_cpu_s")
    return sum(p["server_cpu_s"][1] - p["server_cpu_s"][0] for p in procs)


def _sql_split(procs: list[dict], zero_procs: list[dict], n: int, workers: int) -> list[str]:
    """--sql: per form, each kind of statement's wall time at the client (ms) and count, less the
    empty run's, largest first; medians over runs."""
    if not any(p.get("sql") for p in procs):
        return []
    runs = max(1, len(procs) // workers)

    def per_run(group: list[dict]) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for p in group:
            for kind, (seconds, count) in p.get("sql", {}).items():
                entry = out.setdefault(kind, [0.0, 0])
                entry[0] += seconds
                entry[1] += count
        return out

    full = [per_run(procs[r * workers:(r + 1) * workers]) for r in range(runs)]
    zero = [per_run(zero_procs[r * workers:(r + 1) * workers]) for r in range(max(1, len(zero_procs) // workers))]
    kinds = {k for group in full for k in group}
    rows = []
    for kind in kinds:
        ms = median([g.get(kind, [0, 0])[0] for g in full]) - median([g.get(kind, [0, 0])[0] for g in zero])
        count = median([g.get(kind, [0, 0])[1] for g in full]) - median([g.get(kind, [0, 0])[1] for g in zero])
        rows.append((ms / n * 1000, count / n, kind))
    rows.sort(reverse=True)
    total = sum(r[0] for r in rows)
    parts = " | ".join(f"{kind} {ms:.2f} ({count:g})" for ms, count, kind in rows if ms >= 0.05 or count >= 0.5)
    return [f"  per form, SQL at the client, ms of wall time (statements): {parts} | sum {total:.1f}",
            "    (summed over the run's threads, whose statements may overlap; on SQLite a BEGIN includes waiting "
            "for the other thread's write)"]


def _fixed_split(procs: list[dict]) -> list[str]:
    def med(key):
        return median([p[key] for p in procs])

    server = median([p["stages"].get("prefect server start", 0.0) for p in procs])
    early = median([p.get("early_server_wait_s", 0.0) for p in procs])
    connect = median([p["stages"].get("connect", 0.0) for p in procs])
    started = "waiting for the server started first" if early else "Prefect temporary server start"
    return [
        "  fixed cost, where       imports {:.2f} s | {} {:.2f} s | other flow-run set-up {:.2f} s | flow body "
        "{:.2f} s (of which DB connect + migration check {:.2f} s) | flow-run teardown {:.2f} s | interpreter "
        "start + exit (server stop) = the rest".format(
            med("import_s"), started, server, med("flow_setup_s") - (0 if early else server), med("flow_body_s"),
            connect, med("flow_teardown_s"))
    ]


def _stage_split(procs: list[dict], zero_procs: list[dict], n: int, walls: list[float], workers: int) -> list[str]:
    """Per form (ms, medians over runs): each stage, less what the empty run spent in it, and the
    rest of the flow body (orchestration), likewise."""
    runs = max(1, len(procs) // workers)
    stages = (*STAGES, "imports")

    def spent(group: list[dict], key: str, stage: str) -> float:
        return sum(p.get(key, {}).get(stage, 0.0) for p in group)

    def outside(group: list[dict]) -> float:  # the flow body's time outside every stage
        return sum(p["flow_body_s"] - sum(v for k, v in p["stages"].items() if k != "prefect server start")
                   for p in group)

    zero_groups = [zero_procs[i:i + workers] for i in range(0, len(zero_procs), workers)]
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for r in range(runs):
        group = procs[r * workers:(r + 1) * workers]
        for stage in stages:
            wall.setdefault(stage, []).append(
                spent(group, "stages", stage) - median([spent(z, "stages", stage) for z in zero_groups]))
            cpu.setdefault(stage, []).append(
                spent(group, "stages_cpu", stage) - median([spent(z, "stages_cpu", stage) for z in zero_groups]))
        wall.setdefault("orchestration", []).append(outside(group) - median([outside(z) for z in zero_groups]))
    per_form = {k: median(v) / n * 1000 for k, v in wall.items()}
    per_form_cpu = {k: median(v) / n * 1000 for k, v in cpu.items()}
    total = sum(per_form.values())
    parts = " | ".join(f"{k} {v:.1f}" + (f" ({per_form_cpu[k]:.1f})" if k in per_form_cpu else "")
                       for k, v in per_form.items())
    summed = f" summed over the {workers} processes" if workers > 1 else ""
    return [f"  per form, by stage{summed}, ms of wall time (of CPU time): {parts} | sum {total:.1f}",
            "    (each less the empty run's; imports: modules the run imports on first use; orchestration: the "
            "flow body's time outside the stages: Prefect tasks, listing, logging to the API, the report)"]


# ============================================================================ latency under a schedule


def latency(args, sc: Scenario) -> str:
    """Forms dropped at random moments while a run starts every S seconds: drop -> email times.

    The schedule is simulated: a new `delegation run`-equivalent process every S seconds, as a
    Prefect process worker starts one per scheduled flow run (a run still going when the next is
    due is left to finish; claims keep two runs from taking one file). Each drop is a finished
    upload appearing at once (written aside, then renamed into inbox/); its email is found by the
    delegate's address in the Subject, and timed by the .eml file's mtime.
    """
    interval, drops = args.latency, args.drops
    place = sc.fresh("latency", False)
    inbox, outbox = Path(place["inbox"]) / "inbox", Path(place["outbox"])
    spec = json.dumps({"inbox": place["inbox"], "db": place["db"], "outbox": place["outbox"], "profile": None})
    env = child_env(sc.work / "prefect-home-0", sc.key)
    if not (sc.work / "prefect-home-0").exists():
        _warm_one(sc, 0)
    sealed = sorted(sc.sealed.iterdir())[:drops]
    rng = random.Random(7)
    window = interval * drops / args.drops_per_tick
    offsets = sorted(rng.uniform(0, window) for _ in sealed)
    dropped: dict[str, float] = {}  # delegate email -> when its form appeared in the inbox
    delivered: dict[str, float] = {}
    start = time.time() + 1

    def dropper() -> None:
        for at, path in zip(offsets, sealed, strict=True):
            time.sleep(max(0.0, start + at - time.time()))
            tmp = inbox / f".{path.name}.part"
            shutil.copyfile(path, tmp)
            os.replace(tmp, inbox / path.name)
            dropped[delegate_email(int(path.name.split("-")[1].split(".")[0]))] = time.time()

    def look() -> None:
        for eml in outbox.glob("*.eml") if outbox.exists() else ():
            head = eml.read_bytes()[:4096].decode("utf-8", "replace")
            for who in dropped:
                if who not in delivered and who in head:
                    delivered[who] = eml.stat().st_mtime

    thread = threading.Thread(target=dropper, daemon=True)
    thread.start()
    runs: list[tuple[float, subprocess.Popen]] = []
    durations: list[float] = []
    tick, deadline = start, start + window + 10 * interval + 300
    while time.time() < deadline:
        time.sleep(max(0.0, tick - time.time()))
        runs.append((time.time(), spawn(["--child-pipeline", spec], env)))
        tick += interval
        while tick - time.time() > 0.2:  # until the next tick: reap finished runs, find emails
            for began, proc in list(runs):
                done = reap(proc, block=False)
                if done is None:
                    continue
                if done[0] != 0:
                    raise RuntimeError(f"a scheduled run failed ({done[0]}):\n{done[3][-2000:]}")
                durations.append(time.time() - began)
                runs.remove((began, proc))
            look()
            if len(delivered) == drops:
                break
            time.sleep(0.1)
        if len(delivered) == drops:
            break
    for _, proc in runs:
        reap(proc)
    thread.join()
    lat = sorted(delivered[w] - dropped[w] for w in delivered)
    if not lat:
        return "latency: no email arrived"
    p95 = lat[max(0, round(0.95 * len(lat)) - 1)]
    run_s = median(durations)
    return "\n".join([
        f"latency under a schedule: a run every S = {interval:g} s (simulated: a new `delegation run` process per "
        f"tick, Prefect API {args.prefect_api}); {len(lat)}/{drops} drops emailed; run takes {run_s:.1f} s (median)",
        f"  drop -> email: median {median(lat):.1f} s, p95 {p95:.1f} s, max {lat[-1]:.1f} s; "
        f"p95 / S = {p95 / interval:.2f} "
        f"(a drop waits up to S for the next run, then about a run: expect p95 near 0.95 S + run = "
        f"{0.95 * interval + run_s:.1f} s)",
    ])


# ============================================================================ main


def parse_workers(text: str) -> list[int]:
    values = [int(v) for v in text.split(",")]
    if not values or min(values) < 1 or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError("workers: distinct positive integers, e.g. 1 or 1,2")
    return values


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child-pipeline":
        sys.path.insert(0, str(ROOT))
        child_pipeline(sys.argv[2])
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--child-floor":
        child_floor(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=200, help="number of full (500-account) forms (default 200)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=parse_workers, default=[1],
                        help="concurrent `delegation run` processes over the one inbox; a list such as 1,2 "
                             "measures each and compares (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; medians (default 3)")
    parser.add_argument("--pg-admin", default=PG_ADMIN, help="PostgreSQL URL allowed to CREATE DATABASE")
    parser.add_argument("--profile", action="store_true",
                        help="pyinstrument the first N run of each worker count (text and HTML in the work dir)")
    parser.add_argument("--latency", type=float, metavar="S",
                        help="instead: drop --drops forms at random moments while a run starts every S seconds, "
                             "and report drop -> email latency (p95)")
    parser.add_argument("--drops", type=int, default=20)
    parser.add_argument("--drops-per-tick", type=float, default=2.0, help="average drops per interval")
    parser.add_argument("--variant", default="",
                        help="comma-separated changes proposed for code this benchmark does not edit, applied in "
                             "the measured processes: no-api-logs")
    parser.add_argument("--prefect-api", choices=("ephemeral", "external"), default="ephemeral",
                        help="ephemeral: each process starts its own temporary server, as `delegation run` does; "
                             "external: one API server for the whole benchmark, as a deployment's worker has")
    parser.add_argument("--stages", metavar="SETTING=VALUE", action="append", default=[],
                        help="DELEGATION_JUDGE_WORKERS=N or DELEGATION_STAGED_MIN_FILES=N for the measured "
                             "processes (default: the pipeline's own)")
    parser.add_argument("--pin", action="store_true",
                        help="each pipeline process (and the judging workers it starts) on one CPU of its own, as a "
                             "worker per core: with one core, a run judges in its own process")
    parser.add_argument("--sql", action="store_true",
                        help="time each kind of SQL statement and the commits in the measured processes, as the "
                             "client sees them (the database's work plus a round trip)")
    parser.add_argument("--work-dir", type=Path, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--json", type=Path, help="also write the raw measurements here")
    args = parser.parse_args()
    if args.latency:
        args.n = max(args.n if args.n != 200 else 0, args.drops)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    sc = Scenario(work, args.n, args.db, args.pg_admin)
    server = None
    if args.variant:
        CHILD_EXTRA_ENV["PIPELINE_BENCH_VARIANTS"] = args.variant
    PIN_CPUS[0] = args.pin
    if args.sql:
        CHILD_EXTRA_ENV["PIPELINE_BENCH_SQL"] = "1"
    for setting in args.stages:
        name, _, value = setting.partition("=")
        if name not in ("DELEGATION_JUDGE_WORKERS", "DELEGATION_STAGED_MIN_FILES"):
            parser.error(f"--stages takes DELEGATION_JUDGE_WORKERS or DELEGATION_STAGED_MIN_FILES, not {name}")
        CHILD_EXTRA_ENV[name] = value
    try:
        print(f"pipeline_bench: scratch folder {work}", file=sys.stderr)
        if args.prefect_api == "external":  # the server `delegation run` would start, started once here
            from flows.prefect_api import TemporaryApi

            os.environ["PREFECT_HOME"] = str(work / "prefect-home-external")
            server = TemporaryApi.launch()
            server.wait_ready(timeout=180)  # a fresh database is migrated first
            CHILD_EXTRA_ENV.update(PREFECT_API_URL=server.url, PIPELINE_BENCH_SERVER_PID=str(server.process.pid))
        sc.build()
        if args.latency:
            print(latency(args, sc))
            return
        m = measure(args, sc)
        if args.json:  # first: the raw measurements outlive a failing report
            args.json.write_text(json.dumps(m, indent=1, default=str), encoding="utf-8")
        print(report(m))
        if args.profile:
            print(f"\nprofiles: {work}/profile-w*.txt / .html")
    finally:
        if server is not None:
            server.stop()
        sc.cleanup()
        if not args.keep and not args.profile:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
