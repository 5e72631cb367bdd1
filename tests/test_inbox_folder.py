"""The inbox as a local folder: layout, listing, reading, archiving (spec: cli.md, "The inbox")."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from loaders.inbox import LAYOUT, FolderInbox, Inbox, ItemChanged, ItemMissing, open_inbox

END_STATES = [
    ("applied", "archive/applied/"),
    ("rejected", "archive/rejected/"),
    ("duplicate", "archive/duplicate/"),
    ("quarantined", "quarantine/"),
]


@pytest.fixture
def inbox(tmp_path) -> FolderInbox:
    return open_inbox(tmp_path / "root")


def files_under(inbox: FolderInbox, prefix: str) -> list[str]:
    return [k for k in inbox.keys(prefix) if not k.rsplit("/", 1)[-1].startswith(".")]


def test_opening_a_new_folder_creates_the_whole_layout(tmp_path):
    inbox = open_inbox(str(tmp_path / "new" / "root"))
    assert isinstance(inbox, Inbox)
    for place in LAYOUT:
        assert (tmp_path / "new" / "root" / place).is_dir(), place


def test_a_file_url_opens_the_same_folder(tmp_path):
    inbox = open_inbox(f"file://{tmp_path}/root")
    assert isinstance(inbox, FolderInbox)
    assert inbox.root == tmp_path / "root"


def test_an_unknown_url_scheme_is_refused(tmp_path):
    with pytest.raises(ValueError, match="scheme"):
        open_inbox("ftp://host/inbox")


def test_the_listing_shows_every_finished_upload_with_its_key_and_size(inbox):
    inbox.put("inbox/acme.xlsx.sealed", b"abc")
    inbox.put("inbox/no-extension", b"12345")
    inbox.put("inbox/sub/nested.sealed", b"x")
    items = {i.key: i for i in inbox.waiting()}
    assert set(items) == {"inbox/acme.xlsx.sealed", "inbox/no-extension", "inbox/sub/nested.sealed"}
    assert items["inbox/no-extension"].size == 5
    assert items["inbox/acme.xlsx.sealed"].name == "acme.xlsx.sealed"


@pytest.mark.parametrize(
    "hidden",
    ["inbox/.upload.part", "inbox/.DS_Store", "inbox/.tmp/inside.sealed", "inbox/sub/.half"],
)
def test_the_listing_skips_names_starting_with_a_dot(inbox, hidden):
    inbox.put(hidden, b"unfinished")
    inbox.put("inbox/ready.sealed", b"done")
    assert [i.key for i in inbox.waiting()] == ["inbox/ready.sealed"]


def test_the_listing_follows_no_symlinks_and_shows_only_regular_files(inbox, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not a form")
    os.symlink(outside / "secret.txt", inbox.root / "inbox" / "link-to-file")
    os.symlink(outside, inbox.root / "inbox" / "link-to-dir")
    os.mkfifo(inbox.root / "inbox" / "a-fifo")
    inbox.put("inbox/real.sealed", b"x")
    assert [i.key for i in inbox.waiting()] == ["inbox/real.sealed"]


def test_received_at_is_the_files_mtime_in_utc(inbox):
    inbox.put("inbox/a.sealed", b"x")
    when = datetime(2026, 11, 3, 9, 30, 15, tzinfo=UTC)
    os.utime(inbox.root / "inbox" / "a.sealed", (when.timestamp(), when.timestamp()))
    (item,) = inbox.waiting()
    assert item.received_at == when
    assert item.received_at.utcoffset().total_seconds() == 0


def test_the_listing_is_oldest_first(inbox):
    for name, day in (("c", 3), ("a", 2), ("b", 1)):
        inbox.put(f"inbox/{name}", b"x")
        t = datetime(2026, 11, day, tzinfo=UTC).timestamp()
        os.utime(inbox.root / "inbox" / name, (t, t))
    assert [i.key for i in inbox.waiting()] == ["inbox/b", "inbox/a", "inbox/c"]


@pytest.mark.parametrize(("size", "max_bytes", "expected"), [(0, 10, 0), (10, 10, 10), (11, 10, 11), (5000, 10, 11)])
def test_fetch_never_reads_more_than_one_byte_past_the_limit(inbox, size, max_bytes, expected):
    inbox.put("inbox/f", bytes(range(256)) * (size // 256) + bytes(size % 256))
    data = inbox.fetch("inbox/f", max_bytes)
    assert len(data) == expected


def test_fetching_a_missing_key_says_so(inbox):
    with pytest.raises(ItemMissing):
        inbox.fetch("inbox/nothing", 10)


def test_fetch_refuses_a_symlink_swapped_in_after_listing(inbox, tmp_path):
    (tmp_path / "target").write_bytes(b"elsewhere")
    os.symlink(tmp_path / "target", inbox.root / "inbox" / "swapped")
    with pytest.raises(OSError):
        inbox.fetch("inbox/swapped", 100)


@pytest.mark.parametrize("key", ["../escape", "inbox/../../etc/passwd", "/etc/passwd", "inbox//x", ""])
def test_keys_that_leave_the_root_are_refused(inbox, key):
    with pytest.raises(ValueError):
        inbox.fetch(key, 10)


@pytest.mark.parametrize("key", ["archive/applied/x", "quarantine/x", "inbox/", "elsewhere"])
def test_only_files_under_inbox_can_be_archived(inbox, key):
    with pytest.raises(ValueError):
        inbox.archive(key, "applied")


def test_an_unknown_end_state_is_refused(inbox):
    inbox.put("inbox/a", b"x")
    with pytest.raises(ValueError, match="end state"):
        inbox.archive("inbox/a", "pending")
    assert inbox.fetch("inbox/a", 10) == b"x"


@pytest.mark.parametrize(("status", "place"), END_STATES)
def test_archiving_moves_the_original_to_its_end_state(inbox, status, place):
    inbox.put("inbox/acme.xlsx.sealed", b"sealed bytes")
    os.utime(inbox.root / "inbox" / "acme.xlsx.sealed", (1_000_000_000, 1_000_000_000))
    dest = inbox.archive("inbox/acme.xlsx.sealed", status)
    assert dest == f"{place}acme.xlsx.sealed"
    assert list(inbox.waiting()) == []
    assert (inbox.root / dest).read_bytes() == b"sealed bytes"
    assert (inbox.root / dest).stat().st_mtime == 1_000_000_000  # the time of receipt is kept


def test_archiving_keeps_the_folders_under_inbox(inbox):
    inbox.put("inbox/team-a/form.sealed", b"x")
    assert inbox.archive("inbox/team-a/form.sealed", "rejected") == "archive/rejected/team-a/form.sealed"


@pytest.mark.parametrize(("status", "place"), END_STATES)
def test_archiving_never_overwrites_a_file_of_the_same_name(inbox, status, place):
    contents = [b"first drop", b"second drop", b"third drop"]
    destinations = []
    for content in contents:
        inbox.put("inbox/acme.xlsx.sealed", content)
        destinations.append(inbox.archive("inbox/acme.xlsx.sealed", status))
    assert len(set(destinations)) == 3
    assert destinations[0] == f"{place}acme.xlsx.sealed"
    for dest in destinations[1:]:
        assert dest.startswith(f"{place}acme~") and dest.endswith(".xlsx.sealed")
    assert [(inbox.root / d).read_bytes() for d in destinations] == contents
    assert sorted(files_under(inbox, place)) == sorted(destinations)


def test_the_same_bytes_archived_again_under_the_same_name_are_not_copied_twice(inbox):
    inbox.put("inbox/a.sealed", b"same")
    first = inbox.archive("inbox/a.sealed", "rejected")
    inbox.put("inbox/a.sealed", b"same")
    assert inbox.archive("inbox/a.sealed", "rejected") == first
    assert files_under(inbox, "archive/rejected/") == [first]
    assert list(inbox.waiting()) == []


def test_archiving_again_after_a_crash_between_copy_and_delete_finishes_the_move(inbox):
    inbox.put("inbox/a.sealed", b"payload")
    # the crash: the copy (a hard link) was made, the original not yet removed
    os.link(inbox.root / "inbox" / "a.sealed", inbox.root / "archive" / "applied" / "a.sealed")
    assert inbox.archive("inbox/a.sealed", "applied") == "archive/applied/a.sealed"
    assert list(inbox.waiting()) == []
    assert files_under(inbox, "archive/") == ["archive/applied/a.sealed"]


def test_archiving_again_after_a_crash_with_a_full_copy_finishes_the_move(inbox):
    inbox.put("inbox/a.sealed", b"payload")
    (inbox.root / "archive" / "applied" / "a.sealed").write_bytes(b"payload")
    assert inbox.archive("inbox/a.sealed", "applied") == "archive/applied/a.sealed"
    assert files_under(inbox, "archive/") == ["archive/applied/a.sealed"]


@pytest.mark.parametrize("earlier_files", [0, 1])
def test_archiving_a_file_already_moved_returns_where_it_went(inbox, earlier_files):
    for n in range(earlier_files):
        inbox.put("inbox/a.sealed", f"older {n}".encode())
        inbox.archive("inbox/a.sealed", "applied")
    inbox.put("inbox/a.sealed", b"this one")
    dest = inbox.archive("inbox/a.sealed", "applied")
    # a retry after a crash that came after the move but before anyone recorded it
    assert inbox.archive("inbox/a.sealed", "applied") == dest
    assert (inbox.root / dest).read_bytes() == b"this one"


def test_archiving_a_file_that_never_was_says_so(inbox):
    with pytest.raises(ItemMissing):
        inbox.archive("inbox/ghost.sealed", "applied")


def test_a_file_is_never_deleted_when_its_copy_fails(inbox, monkeypatch):
    inbox.put("inbox/a.sealed", b"precious")

    def broken_link(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "link", broken_link)
    with pytest.raises(OSError):
        inbox.archive("inbox/a.sealed", "applied")
    assert inbox.fetch("inbox/a.sealed", 100) == b"precious"


def test_without_hard_links_archiving_copies_then_deletes(inbox, monkeypatch):
    inbox.put("inbox/a.sealed", b"first")
    inbox.archive("inbox/a.sealed", "applied")
    inbox.put("inbox/a.sealed", b"second")

    def no_links(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    dest = inbox.archive("inbox/a.sealed", "applied")
    assert dest != "archive/applied/a.sealed"
    assert (inbox.root / "archive/applied/a.sealed").read_bytes() == b"first"
    assert (inbox.root / dest).read_bytes() == b"second"
    assert list(inbox.waiting()) == []


def test_put_writes_whole_files_and_leaves_no_temporary_behind(inbox):
    inbox.put("inbox/a.sealed", b"x" * 100_000)
    assert inbox.keys("inbox/") == ["inbox/a.sealed"]
    assert inbox.fetch("inbox/a.sealed", 200_000) == b"x" * 100_000


def test_a_failed_put_shows_nothing_in_the_inbox(inbox, monkeypatch):
    def crash(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        inbox.put("inbox/a.sealed", b"half")
    assert list(inbox.waiting()) == []
    assert inbox.keys("inbox/") == []


def test_a_folder_carries_no_metadata(inbox):
    inbox.put("inbox/a.sealed", b"x", {"submitted-by": "S1"})
    assert inbox.metadata("inbox/a.sealed") == {}


def test_a_file_dropped_again_under_the_same_name_before_archiving_is_left_in_the_inbox(inbox):
    inbox.put("inbox/a.sealed", b"first version")
    (listed,) = inbox.waiting()
    os.utime(inbox.root / "inbox" / "a.sealed", ns=(0, 10**18))  # the second drop: another version
    inbox.put("inbox/a.sealed", b"second version, not yet processed")
    with pytest.raises(ItemChanged):
        inbox.fetch("inbox/a.sealed", 100, etag=listed.etag)
    with pytest.raises(ItemChanged):
        inbox.archive("inbox/a.sealed", "applied", etag=listed.etag)
    assert inbox.fetch("inbox/a.sealed", 100) == b"second version, not yet processed"
    assert files_under(inbox, "archive/") == []


def test_with_its_etag_a_retried_archive_finds_its_own_copy_among_others(inbox):
    inbox.put("inbox/a.sealed", b"version one")
    (first,) = inbox.waiting()
    mine = inbox.archive("inbox/a.sealed", "rejected", etag=first.etag)
    inbox.put("inbox/a.sealed", b"version two")
    inbox.archive("inbox/a.sealed", "rejected")
    assert inbox.archive("inbox/a.sealed", "rejected", etag=first.etag) == mine
    assert inbox.fetch(mine, 100) == b"version one"


def test_fetch_with_the_listed_etag_reads_the_listed_file(inbox):
    inbox.put("inbox/a.sealed", b"payload")
    (item,) = inbox.waiting()
    assert inbox.fetch(item.key, 100, etag=item.etag) == b"payload"
