"""Guarantee 5: hostile and broken files go through the whole pipeline to quarantine/, each with its
file-level code and an email to the operations mailbox, within bounded time and memory, and never
stop the run.

The envelope's bit-flip and truncation sweeps and its fuzzing are in test_envelope_sweeps.py; the
workbook reader's hostile zips and XML, and its fuzzing, in test_hostile_workbooks.py. Here one file
of each kind goes end to end.
"""

from __future__ import annotations

import email
import resource
import time
import tracemalloc
from email import policy

import pytest

from flows.pipeline import process_item, process_items
from tests.pipeline_builders import (
    REQUESTER,
    Drop,
    assert_exactly_once,
    deps_for,
    lines_for,
    make_world,
    outbox_rows,
    sample,
    seal,
    valid_drop,
    waiting,
    workbook,
)
from tests.test_hostile_workbooks import (
    BILLION_LAUGHS,
    MAIN,
    SHEET_HEAD,
    SHEET_TAIL,
    Entry,
    repeated_stream,
    with_part,
)

MiB = 1024 * 1024
SECONDS = 2.0
EXTRA_MEMORY = 200 * MiB
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4096)  # a legacy .xls


def _form(world) -> bytes:
    person = world.delegates[0]
    return workbook(REQUESTER, person, lines_for(person))


def _wrong_key(world) -> bytes:
    """Sealed to another key, but naming ours: the key id matches, the decryption cannot."""
    from loaders.envelope import key_id

    data = bytearray(seal(_form(world), world.keys, to_other_key=True))
    data[10:26] = bytes.fromhex(key_id(world.keys.intake_pub))
    return bytes(data)


def _flipped(world) -> bytes:
    data = bytearray(seal(_form(world), world.keys))
    data[200] ^= 0x04
    return bytes(data)


def _signed_by_a_stranger(world) -> bytes:
    from loaders.envelope import generate_signing_keypair
    from loaders.envelope import seal as raw_seal

    stranger, _ = generate_signing_keypair()
    return raw_seal(_form(world), world.keys.intake_pub, stranger)


def _signature_broken(world) -> bytes:
    data = bytearray(seal(_form(world), world.keys, signed=True))
    data[-1] ^= 0x01
    return bytes(data)


def _zip_bomb() -> bytes:
    stream, size = repeated_stream(SHEET_HEAD, bytes(MiB), 1024, SHEET_TAIL)  # 1 GiB inflated
    return with_part("xl/worksheets/sheet1.xml", Entry("xl/worksheets/sheet1.xml", stream, 0, size))


def _entity_bomb() -> bytes:
    return with_part("xl/sharedStrings.xml", f'{BILLION_LAUGHS}<sst xmlns="{MAIN}"><si><t>&lol9;</t></si></sst>',
                     shared="")


# (what, the file, its code, settings): every file-level code of the spec
HOSTILE = [
    ("zero-byte file", lambda w: b"", "DECRYPT_FAILED", {}),
    ("random bytes", lambda w: bytes(range(256)) * 12, "DECRYPT_FAILED", {}),
    ("an image", lambda w: b"\x89PNG\r\n\x1a\n" + bytes(2000), "DECRYPT_FAILED", {}),
    ("sealed to a key the intake does not hold (unknown key id)",
     lambda w: seal(_form(w), w.keys, to_other_key=True), "DECRYPT_FAILED", {}),
    ("sealed to another key under our key id (wrong key)", _wrong_key, "DECRYPT_FAILED", {}),
    ("a bit flipped in the ciphertext", _flipped, "DECRYPT_FAILED", {}),
    ("cut short", lambda w: seal(_form(w), w.keys)[:-100], "DECRYPT_FAILED", {}),
    ("an unsealed workbook", _form, "NOT_ENCRYPTED", {}),
    ("an unsealed CSV", lambda w: b"Requester First Name,Requester Last Name\nRita,Reyes\n", "NOT_ENCRYPTED", {}),
    ("an unsealed legacy .xls", lambda w: OLE, "NOT_ENCRYPTED", {}),
    ("over 10 MiB", lambda w: seal(_form(w), w.keys) + bytes(10 * MiB), "FILE_TOO_LARGE", {}),
    ("a sealed 1 GiB zip bomb", lambda w: seal(_zip_bomb(), w.keys), "FILE_TOO_LARGE", {}),
    ("a sealed XML entity bomb", lambda w: seal(_entity_bomb(), w.keys), "NOT_XLSX", {}),
    ("a sealed macro-enabled workbook", lambda w: seal(sample("file_NOT_XLSX_macro.xlsx"), w.keys), "NOT_XLSX", {}),
    ("a sealed legacy .xls", lambda w: seal(OLE, w.keys), "NOT_XLSX", {}),
    ("a sealed CSV", lambda w: seal(sample("file_NOT_XLSX_csv.xlsx"), w.keys), "NOT_XLSX", {}),
    ("an unsigned form where a signature is required", lambda w: seal(_form(w), w.keys), "SIGNATURE_MISSING",
     {"require_signature": True}),
    ("a form signed by an unknown key", _signed_by_a_stranger, "SIGNATURE_INVALID", {}),
    ("a form whose signature was altered", _signature_broken, "SIGNATURE_INVALID", {}),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One directory (with a known submitter) for the module: each test drops its own files."""
    import validators  # noqa: F401 - the first form of a run pays this import (~0.7 s), not a file's cost

    root = tmp_path_factory.mktemp("hostile")
    return make_world(root, f"sqlite:///{root / 'delegation.db'}", delegates=3, submitter=True)


@pytest.mark.parametrize(("what", "make", "code", "settings"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_file_is_quarantined_with_its_code_and_the_operations_mailbox_told_in_bounded_time_and_memory(
    world, what, make, code, settings
):
    name = "hostile-" + "".join(c if c.isalnum() else "-" for c in what) + ".sealed"
    data = make(world)
    world.open_inbox().put(f"inbox/{name}", data)
    deps = deps_for(world, **settings)
    [item] = [i for i in waiting(deps) if i.key == f"inbox/{name}"]

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    started = time.perf_counter()
    try:
        outcome = process_item(deps, item, run_id="hostile")
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before

    assert str(outcome.status) == "quarantined"
    assert [str(e.code) for e in outcome.errors] == [code]
    assert seconds < SECONDS, f"{seconds:.2f} s (traced: Python runs slower under tracemalloc)"
    assert peak < EXTRA_MEMORY and rss_growth < EXTRA_MEMORY, (peak / MiB, rss_growth / MiB)
    assert deps.inbox.keys(f"quarantine/{name}") == [f"quarantine/{name}"]
    assert deps.inbox.keys(f"inbox/{name}") == []
    [mail] = [r for r in outbox_rows(world.db_url) if r["object_key"] == item.key]
    assert (mail["kind"], mail["recipients"], mail["status"]) == ("quarantined", f'["{world.ops}"]', "sent")
    told = email.message_from_bytes(bytes(mail["message"]), policy=policy.default)
    assert "quarantined" in told["Subject"] and code in told["Subject"]
    assert not list(told.iter_attachments()), "a hostile file is never attached"


def test_hostile_files_never_stop_the_run_and_the_forms_among_them_are_applied(tmp_path, sqlite_url):
    world = make_world(tmp_path, sqlite_url, delegates=3, submitter=True)
    for n, (_what, make, code, settings) in enumerate(HOSTILE):
        if not settings:
            world.drop(Drop(f"{n:02d}.sealed", make(world), "quarantined", (code,), mail_to=world.ops))
    world.drop(valid_drop(world, 2, signed=True), valid_drop(world, 3))
    deps = deps_for(world)

    started = time.perf_counter()
    batch = process_items(deps, waiting(deps), run_id="mixed")

    assert batch.failed == [] and batch.stopped is None
    assert time.perf_counter() - started < SECONDS * len(world.drops)
    assert_exactly_once(world, [o.to_report() for o in batch.done])
    assert {o.submitted_by for o in batch.done if o.key == "inbox/valid-02.xlsx.sealed"} == {"S1"}
