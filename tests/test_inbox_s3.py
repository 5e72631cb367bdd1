"""The inbox on S3, against moto's server over real HTTP (spec: cli.md, "The inbox")."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from loaders.inbox import (
    META_RECEIVED_AT,
    META_SOURCE_ETAG,
    Inbox,
    InboxError,
    InboxUnavailable,
    ItemChanged,
    ItemMissing,
    S3Inbox,
    open_inbox,
)
from tests.servers import (  # the fixture_* are the moto_endpoint and s3_env fixtures
    aws_dummy_env,
    fixture_moto_endpoint,  # noqa: F401
    fixture_s3_env,  # noqa: F401
    moto_server,
)

END_STATES = [
    ("applied", "archive/applied/"),
    ("rejected", "archive/rejected/"),
    ("duplicate", "archive/duplicate/"),
    ("quarantined", "quarantine/"),
]


@pytest.fixture(params=["", "intake/forms"], ids=["bucket-root", "under-a-prefix"])
def inbox(s3_env, request) -> S3Inbox:
    bucket = f"t-{uuid.uuid4().hex[:16]}"
    url = f"s3://{bucket}/{request.param}" if request.param else f"s3://{bucket}"
    inbox = open_inbox(url, max_attempts=2, connect_timeout=1, read_timeout=5)
    inbox.ensure_layout()
    return inbox


def raw_key(inbox: S3Inbox, key: str) -> str:
    return inbox.prefix + key


def test_an_s3_url_opens_an_s3_inbox_with_its_bucket_and_prefix(s3_env):
    inbox = open_inbox("s3://my-bucket/some/prefix/")
    assert isinstance(inbox, S3Inbox) and isinstance(inbox, Inbox)
    assert (inbox.bucket, inbox.prefix) == ("my-bucket", "some/prefix/")
    assert inbox.client.meta.endpoint_url == s3_env  # from AWS_ENDPOINT_URL


def test_the_client_retries_in_standard_mode_with_the_configured_budget(s3_env):
    inbox = open_inbox("s3://b-cfg", max_attempts=3, connect_timeout=2, read_timeout=7)
    config = inbox.client.meta.config
    assert config.retries == {"total_max_attempts": 3, "mode": "standard"}
    assert (config.connect_timeout, config.read_timeout) == (2, 7)


def test_the_listing_shows_every_finished_upload_with_size_and_etag(inbox):
    inbox.put("inbox/acme.xlsx.sealed", b"abc")
    inbox.put("inbox/sub/nested.sealed", b"12345")
    items = {i.key: i for i in inbox.waiting()}
    assert set(items) == {"inbox/acme.xlsx.sealed", "inbox/sub/nested.sealed"}
    assert items["inbox/sub/nested.sealed"].size == 5
    assert items["inbox/acme.xlsx.sealed"].etag == "900150983cd24fb0d6963f7d28e17f72"  # md5("abc")


@pytest.mark.parametrize("hidden", ["inbox/.upload.part", "inbox/.tmp/inside.sealed", "inbox/sub/.half"])
def test_the_listing_skips_names_starting_with_a_dot_and_folder_markers(inbox, hidden):
    inbox.put(hidden, b"unfinished")
    # the "folder" a console creates
    inbox.client.put_object(Bucket=inbox.bucket, Key=raw_key(inbox, "inbox/"), Body=b"")
    inbox.put("inbox/ready.sealed", b"done")
    assert [i.key for i in inbox.waiting()] == ["inbox/ready.sealed"]


def test_the_listing_sees_only_the_inbox_of_its_own_prefix(inbox):
    inbox.client.put_object(Bucket=inbox.bucket, Key="other/inbox/x", Body=b"x")
    inbox.put("archive/applied/old", b"x")
    inbox.put("inbox/mine", b"x")
    assert [i.key for i in inbox.waiting()] == ["inbox/mine"]


def test_received_at_is_the_objects_last_modified_in_utc(inbox):
    before = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    inbox.put("inbox/a.sealed", b"x")
    (item,) = inbox.waiting()
    head = inbox.client.head_object(Bucket=inbox.bucket, Key=raw_key(inbox, "inbox/a.sealed"))
    assert item.received_at == head["LastModified"]
    assert item.received_at.utcoffset() == timedelta(0)
    assert before <= item.received_at <= datetime.now(UTC) + timedelta(seconds=1)


def test_a_listing_of_more_than_a_thousand_objects_sees_every_one(s3_env):
    inbox = open_inbox(f"s3://t-{uuid.uuid4().hex[:16]}/big", max_attempts=2)
    inbox.ensure_layout()
    keys = [f"inbox/form-{n:04d}.sealed" for n in range(1_005)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda k: inbox.put(k, b"x"), keys))
    inbox.put("inbox/.still-uploading", b"x")
    listed = [i.key for i in inbox.waiting()]
    assert len(listed) == 1_005
    assert sorted(listed) == keys


@pytest.mark.parametrize(("size", "max_bytes", "expected"), [(0, 10, 0), (10, 10, 10), (11, 10, 11), (5000, 10, 11)])
def test_fetch_never_reads_more_than_one_byte_past_the_limit(inbox, size, max_bytes, expected):
    data = (bytes(range(256)) * 20)[:size]
    inbox.put("inbox/f", data)
    assert inbox.fetch("inbox/f", max_bytes) == data[:expected]


def test_fetching_a_missing_key_says_so(inbox):
    with pytest.raises(ItemMissing):
        inbox.fetch("inbox/nothing", 10)


def test_the_submitters_metadata_is_readable(inbox):
    inbox.put("inbox/a.sealed", b"x", {"submitted-by": "S1"})
    assert inbox.metadata("inbox/a.sealed") == {"submitted-by": "S1"}


@pytest.mark.parametrize(("status", "place"), END_STATES)
def test_archiving_copies_then_deletes_the_original(inbox, status, place):
    inbox.put("inbox/acme.xlsx.sealed", b"sealed bytes", {"submitted-by": "S7"})
    (item,) = inbox.waiting()
    dest = inbox.archive("inbox/acme.xlsx.sealed", status)
    assert dest == f"{place}acme.xlsx.sealed"
    assert list(inbox.waiting()) == []
    assert inbox.fetch(dest, 100) == b"sealed bytes"
    meta = inbox.metadata(dest)
    assert meta["submitted-by"] == "S7"  # the uploader's metadata travels with the copy
    assert meta[META_SOURCE_ETAG] == item.etag
    assert datetime.fromisoformat(meta[META_RECEIVED_AT]) == item.received_at


def test_archiving_keeps_the_folders_under_inbox(inbox):
    inbox.put("inbox/team-a/form.sealed", b"x")
    assert inbox.archive("inbox/team-a/form.sealed", "rejected") == "archive/rejected/team-a/form.sealed"


@pytest.mark.parametrize("status", ["applied", "quarantined"])
def test_archiving_never_overwrites_an_object_of_the_same_name(inbox, status):
    contents = [b"first drop", b"second drop", b"third drop"]
    destinations = []
    for content in contents:
        inbox.put("inbox/acme.xlsx.sealed", content)
        destinations.append(inbox.archive("inbox/acme.xlsx.sealed", status))
    assert len(set(destinations)) == 3
    assert all("~" in d and d.endswith(".xlsx.sealed") for d in destinations[1:])
    assert [inbox.fetch(d, 100) for d in destinations] == contents


def test_archiving_again_after_a_crash_between_copy_and_delete_finishes_the_move(inbox):
    inbox.put("inbox/a.sealed", b"payload")
    dest = inbox.archive("inbox/a.sealed", "applied")
    # replay the crash: the original is back (as if never deleted), the copy is in place
    inbox.client.copy_object(
        Bucket=inbox.bucket,
        Key=raw_key(inbox, "inbox/a.sealed"),
        CopySource={"Bucket": inbox.bucket, "Key": raw_key(inbox, dest)},
    )
    assert inbox.archive("inbox/a.sealed", "applied") == dest
    assert list(inbox.waiting()) == []
    assert inbox.keys("archive/") == ["archive/applied/a.sealed"]


@pytest.mark.parametrize("earlier_objects", [0, 1])
def test_archiving_an_object_already_moved_returns_where_it_went(inbox, earlier_objects):
    for n in range(earlier_objects):
        inbox.put("inbox/a.sealed", f"older {n}".encode())
        inbox.archive("inbox/a.sealed", "applied")
        time.sleep(1.05)  # LastModified has a resolution of one second
    inbox.put("inbox/a.sealed", b"this one")
    dest = inbox.archive("inbox/a.sealed", "applied")
    assert inbox.archive("inbox/a.sealed", "applied") == dest
    assert inbox.fetch(dest, 100) == b"this one"


def test_archiving_an_object_that_never_was_says_so(inbox):
    with pytest.raises(ItemMissing):
        inbox.archive("inbox/ghost.sealed", "applied")


def test_an_object_is_never_deleted_when_its_copy_does_not_verify(inbox, monkeypatch):
    inbox.put("inbox/a.sealed", b"precious")
    real_head = inbox._head
    monkeypatch.setattr(inbox, "_head", lambda key: None if key.startswith("archive/") else real_head(key))
    with pytest.raises(InboxError, match="did not verify"):
        inbox.archive("inbox/a.sealed", "applied")
    assert inbox.fetch("inbox/a.sealed", 100) == b"precious"


def test_a_missing_bucket_is_a_clear_error(s3_env):
    inbox = open_inbox(f"s3://t-missing-{uuid.uuid4().hex[:8]}", max_attempts=1)
    with pytest.raises(InboxError, match="bucket does not exist"):
        list(inbox.waiting())


def test_an_outage_surfaces_as_inbox_unavailable_after_bounded_retries(monkeypatch):
    with moto_server() as server:
        aws_dummy_env(monkeypatch, server.endpoint)
        inbox = open_inbox(f"s3://t-{uuid.uuid4().hex[:16]}", max_attempts=2, connect_timeout=0.5)
        inbox.ensure_layout()
        inbox.put("inbox/a.sealed", b"waiting")
        assert [i.key for i in inbox.waiting()] == ["inbox/a.sealed"]
        server.stop()  # the store goes down

        for attempt in (
            lambda: list(inbox.waiting()),
            lambda: inbox.fetch("inbox/a.sealed", 10),
            lambda: inbox.archive("inbox/a.sealed", "applied"),
        ):
            started = time.monotonic()
            with pytest.raises(InboxUnavailable, match=r"unavailable .* after 2 attempt"):
                attempt()
            assert time.monotonic() - started < 10

        # it comes back: nothing was moved, nothing lost
        with moto_server(port=int(server.endpoint.rsplit(":", 1)[1])):
            assert [i.key for i in inbox.waiting()] == ["inbox/a.sealed"]
            assert inbox.keys("archive/") == []


def test_an_object_dropped_again_under_the_same_name_before_archiving_is_left_in_the_inbox(inbox):
    inbox.put("inbox/a.sealed", b"first version")
    (listed,) = inbox.waiting()
    inbox.put("inbox/a.sealed", b"second version, not yet processed")
    with pytest.raises(ItemChanged):
        inbox.fetch("inbox/a.sealed", 100, etag=listed.etag)
    with pytest.raises(ItemChanged):
        inbox.archive("inbox/a.sealed", "applied", etag=listed.etag)
    assert inbox.fetch("inbox/a.sealed", 100) == b"second version, not yet processed"
    assert inbox.keys("archive/") == []


def test_with_its_etag_a_retried_archive_finds_its_own_copy_among_others(inbox):
    inbox.put("inbox/a.sealed", b"version one")
    (first,) = inbox.waiting()
    mine = inbox.archive("inbox/a.sealed", "rejected", etag=first.etag)
    inbox.put("inbox/a.sealed", b"version two")
    inbox.archive("inbox/a.sealed", "rejected")
    assert inbox.archive("inbox/a.sealed", "rejected", etag=first.etag) == mine
    assert inbox.fetch(mine, 100) == b"version one"


@pytest.mark.parametrize("size", [0, 7])
def test_fetch_with_the_listed_etag_reads_the_listed_object(inbox, size):
    inbox.put("inbox/a.sealed", b"x" * size)
    (item,) = inbox.waiting()
    assert inbox.fetch(item.key, 100, etag=item.etag) == b"x" * size


@pytest.mark.parametrize("key", ["inbox//double-slash", "inbox/../dots", "inbox/./dot"])
def test_odd_but_legal_s3_keys_are_listed_fetched_and_archived(inbox, key):
    inbox.client.put_object(Bucket=inbox.bucket, Key=raw_key(inbox, key), Body=b"odd")
    (item,) = inbox.waiting()
    assert item.key == key
    assert inbox.fetch(key, 10) == b"odd"
    dest = inbox.archive(key, "quarantined")
    assert dest == "quarantine/" + key[len("inbox/") :]
    assert list(inbox.waiting()) == []


def test_a_store_without_conditional_copies_still_archives_without_overwriting(inbox, monkeypatch):
    from botocore.exceptions import ClientError

    real_copy = inbox.client.copy_object

    def copy_object(**kwargs):
        if "IfNoneMatch" in kwargs:
            raise ClientError({"Error": {"Code": "NotImplemented", "Message": "not here"}}, "CopyObject")
        return real_copy(**kwargs)

    monkeypatch.setattr(inbox.client, "copy_object", copy_object)
    destinations = []
    for content in (b"one", b"two"):
        inbox.put("inbox/a.sealed", content)
        destinations.append(inbox.archive("inbox/a.sealed", "applied"))
    assert [inbox.fetch(d, 10) for d in destinations] == [b"one", b"two"]
