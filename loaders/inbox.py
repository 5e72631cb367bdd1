"""The inbox (spec: cli.md, "The inbox"): a local folder or an S3 prefix, with one layout.

    inbox/                 forms as dropped (names starting with '.' are unfinished uploads)
    archive/applied/       archive/rejected/       archive/duplicate/
    quarantine/            files that could not be opened as forms

Keys are '/'-separated and relative to the root ('inbox/acme.xlsx.sealed'). Nothing dropped is ever
deleted before a verified copy exists under archive/ or quarantine/, and no archived file is ever
overwritten: a second file of the same name but other content gets a suffix made of a short
fingerprint of its content, so retrying a move after a crash finds its own copy and is idempotent.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

INBOX = "inbox/"
QUARANTINE = "quarantine/"
ARCHIVE = "archive/"
ARCHIVE_STATUSES = ("applied", "rejected", "duplicate")
LAYOUT = (INBOX, *(f"{ARCHIVE}{s}/" for s in ARCHIVE_STATUSES), QUARANTINE)

DEFAULT_S3_ATTEMPTS = 5
_MAX_SUFFIXES = 100
_S3_MAX_COPY_OBJECT = 5 * 1024**3  # CopyObject's limit; larger objects need a multipart copy
# Stored on the archived S3 copy: where it came from and when it was received (a copy's own
# LastModified is the time of archiving).
META_SOURCE_ETAG = "delegation-source-etag"
META_SOURCE_KEY = "delegation-source-key"
META_RECEIVED_AT = "delegation-received-at"


class InboxError(Exception):
    """The inbox could not do what was asked (the message names the inbox, never a secret)."""


class InboxUnavailable(InboxError):
    """The store did not answer (down, timing out, throttling) after the configured retries."""


class ItemMissing(InboxError):
    """No such key (and, for archive, no archived copy of it either)."""


class ItemChanged(InboxError):
    """The file under that key is no longer the one listed (someone dropped a new one under its
    name): it was left alone, and will be listed again as a new arrival."""


@dataclass(frozen=True, slots=True)
class Item:
    """A file waiting in inbox/: its key, size and time of receipt (tz-aware UTC).

    `etag` tells this version of the file from a later one dropped under the same name: the S3
    ETag, or for a folder the file's size and mtime. Pass it to fetch and archive.
    """

    key: str
    size: int
    received_at: datetime
    etag: str | None = None

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


@runtime_checkable
class Inbox(Protocol):
    url: str

    def ensure_layout(self) -> None:
        """Create what the layout needs (folders; the S3 bucket if missing)."""

    def waiting(self) -> Iterator[Item]:
        """Every finished upload under inbox/, oldest first."""

    def fetch(self, key: str, max_bytes: int, *, etag: str | None = None) -> bytes:
        """At most max_bytes + 1 bytes of the file: more than max_bytes means 'too large'.

        With `etag`, raises ItemChanged unless the file is still that version.
        """

    def metadata(self, key: str) -> dict[str, str]:
        """The object's user metadata (S3 x-amz-meta-*, lower-case names); {} for a folder."""

    def archive(self, key: str, status: str, *, etag: str | None = None) -> str:
        """Move inbox/<name> to archive/<status>/ or quarantine/; return the destination key.

        Idempotent: when the original is already gone, returns where its copy is. With `etag`,
        only that version is moved (ItemChanged otherwise) and its copy is found exactly.
        """

    def put(self, key: str, data: bytes, metadata: Mapping[str, str] | None = None) -> None:
        """Store a file whole (a reader never sees it half written)."""

    def keys(self, prefix: str = "") -> list[str]:
        """Every key under prefix, sorted (dot files included): for tests, reports and demos."""


def open_inbox(url: str | os.PathLike[str], **options: Any) -> Inbox:
    """The inbox at `s3://bucket/prefix` or a local folder path (created with its layout).

    S3 options: max_attempts, connect_timeout, read_timeout, client (a ready boto3 S3 client).
    """
    text = os.fspath(url)
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme == "s3":
        return S3Inbox(text, **options)
    if scheme == "file":
        text = urlsplit(text).path
    elif scheme:
        raise ValueError(f"unsupported inbox URL scheme {scheme!r}: use s3://bucket/prefix or a path")
    if options:
        raise TypeError(f"a folder inbox takes no options: {sorted(options)}")
    inbox = FolderInbox(text)
    inbox.ensure_layout()
    return inbox


# --- keys and destinations (shared by both stores) ----------------------------------------------


def _check_key(key: str, *, path: bool = True) -> str:
    """The key, if it is relative; for a folder (path=True) also free of '', '.' and '..' parts.

    S3 keys are names, not paths: 'inbox//x' or 'inbox/../x' are objects like any other there, and
    must stay fetchable and archivable (or they would wait in the inbox forever).
    """
    bad = not key or key.startswith("/")
    if path:
        bad = bad or "\x00" in key or any(p in ("", ".", "..") for p in key.split("/"))
    if bad:
        raise ValueError(f"not a relative key: {key!r}")
    return key


def _is_hidden(rel: str) -> bool:
    """Unfinished uploads wait (spec: names starting with '.'), and so does all under a dot folder.

    '.' and '..' are plain names in an S3 key, not hidden ones.
    """
    return any(part.startswith(".") and part not in (".", "..") for part in rel.split("/"))


def _in_inbox(key: str, *, path: bool = True) -> str:
    """The part of the key after 'inbox/' (raises unless the key is under inbox/)."""
    _check_key(key, path=path)
    if not key.startswith(INBOX) or len(key) == len(INBOX):
        raise ValueError(f"not a key under {INBOX}: {key!r}")
    return key[len(INBOX) :]


def destination_dir(status: str) -> str:
    """'archive/<status>/' for applied, rejected and duplicate; 'quarantine/' for quarantined."""
    status = str(status)
    if status in ARCHIVE_STATUSES:
        return f"{ARCHIVE}{status}/"
    if status == "quarantined":
        return QUARANTINE
    raise ValueError(f"not an end state: {status!r}")


def _suffixed(key: str, tag: str) -> str:
    """'d/acme.xlsx.sealed' + tag -> 'd/acme~tag.xlsx.sealed' (extensions kept for people)."""
    head, _, name = key.rpartition("/")
    dot = name.find(".", 1)
    stem, ext = (name, "") if dot < 0 else (name[:dot], name[dot:])
    return f"{head}/{stem}~{tag}{ext}" if head else f"{stem}~{tag}{ext}"


def _candidates(wanted: str, tag: Callable[[], str]) -> Iterator[str]:
    """The wanted key, then suffixed variants (the tag, a content fingerprint, made only if needed)."""
    yield wanted
    fingerprint = tag()
    yield _suffixed(wanted, fingerprint)
    for n in range(2, _MAX_SUFFIXES):
        yield _suffixed(wanted, f"{fingerprint}-{n}")


def _suffix_pattern(wanted: str) -> tuple[str, str]:
    """(prefix, suffix) that every suffixed variant of `wanted` starts and ends with."""
    head, _, name = wanted.rpartition("/")
    dot = name.find(".", 1)
    stem, ext = (name, "") if dot < 0 else (name[:dot], name[dot:])
    return (f"{head}/{stem}~" if head else f"{stem}~"), ext


def _utc(t: datetime) -> datetime:
    return t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)


# --- a local folder -----------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    # A rename or link is durable only once its directory is synced.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fingerprint(st: os.stat_result) -> str:
    """A folder file's version: size and mtime (kept by the move, changed by a new drop)."""
    return f"{st.st_size:x}-{st.st_mtime_ns:x}"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FolderInbox:
    """The inbox as a local folder. Moves are hard link + unlink: atomic, never overwriting."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().absolute()
        self.url = str(self.root)

    def __repr__(self) -> str:
        return f"FolderInbox({self.url!r})"

    def ensure_layout(self) -> None:
        for place in LAYOUT:
            (self.root / place).mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*_check_key(key).split("/"))

    def waiting(self) -> Iterator[Item]:
        items = list(self._scan(self.root / INBOX.rstrip("/"), INBOX))
        items.sort(key=lambda i: (i.received_at, i.key))
        return iter(items)

    def _scan(self, folder: Path, prefix: str) -> Iterator[Item]:
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    yield from self._scan(Path(entry.path), f"{prefix}{entry.name}/")
                elif entry.is_file(follow_symlinks=False):  # symlinks, fifos, sockets are not forms
                    st = entry.stat(follow_symlinks=False)
                    received = datetime.fromtimestamp(st.st_mtime, UTC)
                    yield Item(f"{prefix}{entry.name}", st.st_size, received, _fingerprint(st))
            except FileNotFoundError:  # taken away while we looked
                continue

    def fetch(self, key: str, max_bytes: int, *, etag: str | None = None) -> bytes:
        path = self._path(key)
        try:
            # O_NOFOLLOW: a symlink swapped in after listing is refused, not followed
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError as exc:
            raise ItemMissing(f"{key} is not in {self.url}") from exc
        with os.fdopen(fd, "rb") as f:
            if etag is not None and _fingerprint(os.fstat(f.fileno())) != etag:
                raise ItemChanged(f"{key} in {self.url} is not the file listed")
            return f.read(max_bytes + 1)

    def metadata(self, key: str) -> dict[str, str]:
        if not self._path(key).exists():
            raise ItemMissing(f"{key} is not in {self.url}")
        return {}

    def put(self, key: str, data: bytes, metadata: Mapping[str, str] | None = None) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        _fsync_dir(path.parent)

    def keys(self, prefix: str = "") -> list[str]:
        out = []
        top = self.root.joinpath(*prefix.split("/")[:-1])  # walk only below the prefix's folder
        for dirpath, _dirs, files in os.walk(top):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in files:
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    out.append(key)
        return sorted(out)

    def archive(self, key: str, status: str, *, etag: str | None = None) -> str:
        wanted = destination_dir(status) + _in_inbox(key)
        src = self._path(key)
        try:
            st = os.lstat(src)
        except FileNotFoundError:
            return self._already_archived(key, wanted, etag)
        if etag is not None and _fingerprint(st) != etag:
            raise ItemChanged(f"{key} in {self.url} is not the file listed: left in the inbox")
        for candidate in _candidates(wanted, lambda: _sha256_file(src)[:12]):
            dst = self._path(candidate)
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._copy_no_replace(src, dst)
            except FileExistsError:
                if not self._same(src, dst):
                    continue  # another file of that name: try the next name
            else:
                if etag is not None and _fingerprint(os.lstat(dst)) != etag:
                    os.unlink(dst)  # a new file slipped in under the name: it stays in the inbox
                    raise ItemChanged(f"{key} in {self.url} changed while being archived")
            # the copy is durable and identical: only now may the original go
            os.unlink(src)
            _fsync_dir(src.parent)
            return candidate
        raise InboxError(f"no free archive name for {key} in {self.url}")

    @staticmethod
    def _copy_no_replace(src: Path, dst: Path) -> None:
        try:
            os.link(src, dst, follow_symlinks=False)  # atomic; fails if dst exists
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
                raise
            # no hard links here (another filesystem): a full copy under a dot name, then rename
            if os.path.lexists(dst):
                raise FileExistsError(errno.EEXIST, "exists", str(dst)) from exc
            tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(4)}.part")
            try:
                with open(src, "rb") as fi, open(tmp, "xb") as fo:
                    for chunk in iter(lambda: fi.read(1 << 20), b""):
                        fo.write(chunk)
                    fo.flush()
                    os.fsync(fo.fileno())
                os.utime(tmp, ns=(os.stat(src).st_atime_ns, os.stat(src).st_mtime_ns))
                os.replace(tmp, dst)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        _fsync_dir(dst.parent)

    @staticmethod
    def _same(src: Path, dst: Path) -> bool:
        """Is dst our own earlier copy (a crash between copy and delete)?"""
        try:
            if os.path.samefile(src, dst):
                return True
            return os.path.getsize(src) == os.path.getsize(dst) and _sha256_file(src) == _sha256_file(dst)
        except FileNotFoundError:
            return False

    def _already_archived(self, key: str, wanted: str, etag: str | None) -> str:
        """The original is gone: a previous move made its copy. Find it (by etag if given)."""
        start, end = _suffix_pattern(wanted)
        found = [k for k in self.keys(start) if k.endswith(end) and "/" not in k[len(start) :]]
        if self._path(wanted).is_file():
            found.append(wanted)
        stats = {k: os.lstat(self._path(k)) for k in found}
        if etag is not None:
            stats = {k: st for k, st in stats.items() if _fingerprint(st) == etag}
        if not stats:
            raise ItemMissing(f"{key} is neither in {self.url} nor archived under {wanted}")
        # a hard link (and the unlink of the original) sets the file's ctime: the time of archiving
        return max(stats, key=lambda k: stats[k].st_ctime_ns)


# --- S3 -----------------------------------------------------------------------------------------


class S3Inbox:
    """The inbox under s3://bucket/prefix. Moves are copy, verify (head), then delete."""

    def __init__(
        self,
        url: str,
        *,
        max_attempts: int | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        client: Any = None,
    ):
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"not an s3://bucket/prefix URL: {url!r}")
        self.bucket = parts.netloc
        prefix = parts.path.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.url = f"s3://{self.bucket}/{self.prefix}"
        if max_attempts is None:
            max_attempts = int(os.environ.get("AWS_MAX_ATTEMPTS") or DEFAULT_S3_ATTEMPTS)
        self.max_attempts = max_attempts
        self._if_none_match_on_copy = True
        self._client = client or _s3_client(max_attempts, connect_timeout, read_timeout)

    def __repr__(self) -> str:
        return f"S3Inbox({self.url!r})"

    @property
    def client(self) -> Any:
        return self._client

    # every call goes through here so that failures read the same way
    def _call(self, what: str, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._client, method)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            raise self._translate(what, exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable(what, exc) from exc

    def _unavailable(self, what: str, exc: Exception) -> InboxUnavailable:
        return InboxUnavailable(f"S3 inbox {self.url} unavailable ({what}) after {self.max_attempts} attempt(s): {exc}")

    def _translate(self, what: str, exc: Any) -> InboxError:
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        http = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in ("NoSuchKey", "404", "NotFound"):
            return ItemMissing(f"{what}: not in {self.url}")
        if code == "NoSuchBucket":
            return InboxError(f"S3 inbox {self.url}: the bucket does not exist ({what})")
        if http >= 500 or code in ("SlowDown", "Throttling", "RequestTimeout", "ServiceUnavailable"):
            return self._unavailable(what, exc)
        return InboxError(f"S3 inbox {self.url} refused {what}: {code} {err.get('Message', '')}")

    def _k(self, key: str) -> str:
        return self.prefix + _check_key(key, path=False)

    def ensure_layout(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) not in ("404", "NoSuchBucket"):
                raise self._translate("head bucket", exc) from exc
            region = self._client.meta.region_name
            where = (
                {}
                if region in (None, "us-east-1", "aws-global")
                else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            )
            self._call("create bucket", "create_bucket", **where)
        except BotoCoreError as exc:
            raise self._unavailable("head bucket", exc) from exc

    def _list(self, prefix: str) -> Iterator[dict]:
        from botocore.exceptions import BotoCoreError, ClientError

        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
        try:
            for page in pages:  # 1,000 keys a page: every page is read
                yield from page.get("Contents", ())
        except ClientError as exc:
            raise self._translate(f"list {prefix}", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable(f"list {prefix}", exc) from exc

    def waiting(self) -> Iterator[Item]:
        items = []
        for obj in self._list(INBOX):
            key = obj["Key"][len(self.prefix) :]
            rel = key[len(INBOX) :]
            if not rel or key.endswith("/") or _is_hidden(rel):  # folder markers, unfinished
                continue
            items.append(Item(key, int(obj["Size"]), _utc(obj["LastModified"]), obj.get("ETag", "").strip('"')))
        items.sort(key=lambda i: (i.received_at, i.key))
        return iter(items)

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(o["Key"][len(self.prefix) :] for o in self._list(prefix))

    def fetch(self, key: str, max_bytes: int, *, etag: str | None = None) -> bytes:
        condition = {} if etag is None else {"IfMatch": f'"{etag}"'}
        try:
            # a ranged read: a huge object never crosses the wire whole
            resp = self._call(f"get {key}", "get_object", Key=self._k(key), Range=f"bytes=0-{max_bytes}", **condition)
        except InboxError as exc:
            code = _client_error_code(exc.__cause__)
            if code == "InvalidRange":
                if etag is not None and self._etag_of(key) != etag:
                    raise ItemChanged(f"{key} in {self.url} is not the object listed") from exc
                return b""  # a zero-byte object has no byte 0
            if code in ("PreconditionFailed", "412"):
                raise ItemChanged(f"{key} in {self.url} is not the object listed") from exc
            raise
        body = resp["Body"]
        try:
            return body.read(max_bytes + 1)  # even if the store ignored the range
        except Exception as exc:
            raise self._unavailable(f"read {key}", exc) from exc
        finally:
            body.close()

    def _etag_of(self, key: str) -> str | None:
        head = self._head(key)
        return None if head is None else head["ETag"].strip('"')

    def _head(self, key: str) -> dict | None:
        try:
            return self._call(f"head {key}", "head_object", Key=self._k(key))
        except ItemMissing:
            return None

    def metadata(self, key: str) -> dict[str, str]:
        head = self._head(key)
        if head is None:
            raise ItemMissing(f"{key} is not in {self.url}")
        return dict(head.get("Metadata") or {})

    def put(self, key: str, data: bytes, metadata: Mapping[str, str] | None = None) -> None:
        self._call(f"put {key}", "put_object", Key=self._k(key), Body=data, Metadata=dict(metadata or {}))

    def archive(self, key: str, status: str, *, etag: str | None = None) -> str:
        wanted = destination_dir(status) + _in_inbox(key, path=False)
        src = self._head(key)
        if src is None:
            return self._already_archived(key, wanted, etag)
        if etag is not None and src["ETag"].strip('"') != etag:
            raise ItemChanged(f"{key} in {self.url} is not the object listed: left in the inbox")
        etag = src["ETag"].strip('"')
        for candidate in _candidates(wanted, lambda: hashlib.sha256(etag.encode()).hexdigest()[:12]):
            dst = self._head(candidate)
            if dst is None:
                if not self._copy(key, candidate, src):
                    continue  # someone else took the name between our head and our copy
                dst = self._head(candidate)
                if not self._is_copy_of(dst, src):
                    raise InboxError(f"archiving {key}: the copy at {candidate} did not verify")
            elif not self._is_copy_of(dst, src):
                continue  # another file of that name: try the next name
            # the copy exists and is ours: only now may the original go
            self._call(f"delete {key}", "delete_object", Key=self._k(key))
            return candidate
        raise InboxError(f"no free archive name for {key} in {self.url}")

    def _copy(self, key: str, candidate: str, src: dict) -> bool:
        """Copy with provenance in the metadata, never over an existing object; False if taken."""
        metadata = dict(src.get("Metadata") or {})
        metadata[META_SOURCE_ETAG] = src["ETag"].strip('"')
        metadata[META_SOURCE_KEY] = key
        metadata[META_RECEIVED_AT] = _utc(src["LastModified"]).isoformat()
        extra = {
            "MetadataDirective": "REPLACE",
            "Metadata": metadata,
            "ContentType": src.get("ContentType") or "application/octet-stream",
        }
        source = {"Bucket": self.bucket, "Key": self._k(key)}
        if int(src.get("ContentLength", 0)) > _S3_MAX_COPY_OBJECT:
            try:
                self._client.copy(source, self.bucket, self._k(candidate), ExtraArgs=extra)
            except Exception as exc:
                raise self._unavailable(f"copy {key}", exc) from exc
            return True
        conditions = {"CopySourceIfMatch": src["ETag"]}  # the very bytes we looked at
        if self._if_none_match_on_copy:
            conditions["IfNoneMatch"] = "*"  # never over an existing object (the head before is the fallback)
        try:
            self._call(
                f"copy {key} to {candidate}",
                "copy_object",
                Key=self._k(candidate),
                CopySource=source,
                **conditions,
                **extra,
            )
        except InboxError as exc:
            code = _client_error_code(exc.__cause__)
            if code in ("NotImplemented", "501") and self._if_none_match_on_copy:
                self._if_none_match_on_copy = False  # an S3-compatible store without conditional copies
                return self._copy(key, candidate, src)
            if code in ("PreconditionFailed", "412"):
                if self._etag_of(key) != metadata[META_SOURCE_ETAG]:
                    raise ItemChanged(f"{key} in {self.url} changed while being archived") from exc
                if self._head(candidate) is not None:
                    return False
            raise
        return True

    @staticmethod
    def _is_copy_of(dst: dict | None, src: dict) -> bool:
        if dst is None or int(dst.get("ContentLength", -1)) != int(src.get("ContentLength", -2)):
            return False
        etag = src["ETag"].strip('"')
        meta = dst.get("Metadata") or {}
        return meta.get(META_SOURCE_ETAG) == etag or dst["ETag"].strip('"') == etag

    def _already_archived(self, key: str, wanted: str, etag: str | None) -> str:
        """The original is gone: a previous move made its copy. Find it (by etag if given)."""
        start, end = _suffix_pattern(wanted)
        n = len(self.prefix)
        found = [
            (o["LastModified"], o["Key"][n:])
            for o in self._list(start)
            if o["Key"].endswith(end) and "/" not in o["Key"][n + len(start) :]
        ]
        plain = self._head(wanted)
        if plain is not None:
            found.append((plain["LastModified"], wanted))
        if etag is not None:
            found = [(t, k) for t, k in found if self._copied_from(k) == etag]
        if not found:
            raise ItemMissing(f"{key} is neither in {self.url} nor archived under {wanted}")
        return max(found)[1]  # a copy's LastModified is the time it was archived

    def _copied_from(self, key: str) -> str | None:
        head = self._head(key)
        if head is None:
            return None
        return (head.get("Metadata") or {}).get(META_SOURCE_ETAG) or head["ETag"].strip('"')


def _client_error_code(exc: BaseException | None) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _s3_client(max_attempts: int, connect_timeout: float, read_timeout: float) -> Any:
    """A boto3 S3 client; endpoint, region and credentials come from the usual AWS settings.

    `max_attempts` counts every attempt, the first included (as AWS_MAX_ATTEMPTS does); botocore's
    own `max_attempts` key counts retries only, hence `total_max_attempts`.
    """
    import boto3
    import botocore.session
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    session = botocore.session.Session()
    session.register_component("data_loader", _data_loader())  # parse the S3 model once
    return boto3.session.Session(botocore_session=session).client("s3", config=config)


@functools.cache
def _data_loader() -> Any:
    import botocore.session

    return botocore.session.Session().get_component("data_loader")


__all__ = [
    "ARCHIVE_STATUSES",
    "LAYOUT",
    "FolderInbox",
    "Inbox",
    "InboxError",
    "InboxUnavailable",
    "Item",
    "ItemChanged",
    "ItemMissing",
    "S3Inbox",
    "destination_dir",
    "open_inbox",
]
