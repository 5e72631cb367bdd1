"""The sealed envelope v1: forms encrypted to the intake, optionally signed by a submitter.

Format, verification order and rationale: docs/envelope.md. In short, a file is

    header | ciphertext | [signature]

with X25519 (ephemeral-static) + HKDF-SHA256 + AES-256-GCM, the whole header as associated data,
and an optional Ed25519 signature over header + ciphertext, checked before anything is decrypted.
Every way a file can fail to open raises FileRejected with a file-level code; messages name key
ids and sizes, never plaintext or key material.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import os
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from grants.errors import Code, FileRejected

__all__ = [
    "MAGIC",
    "MAX_SEALED_SIZE",
    "VERSION",
    "KeyConfigError",
    "Opened",
    "SignerKey",
    "generate_intake_keypair",
    "generate_signing_keypair",
    "key_id",
    "load_private_keys",
    "open_sealed",
    "public_key_base64",
    "seal",
    "signer_key_id_of",
    "signers_from_rows",
]

# PNG-style magic: a non-ASCII first byte (never valid UTF-8, so never mistaken for text) and
# CR LF / ^Z / LF so a transfer that rewrites line endings breaks the magic, not the ciphertext.
MAGIC = b"\x89DLG\r\n\x1a\n"
VERSION = 1
FLAG_SIGNED = 0x01
MAX_SEALED_SIZE = 10 * 1024 * 1024  # delegate-form.md, "Limits": a sealed file over 10 MiB

KEY_ID_LEN = 16
_EPHEMERAL_LEN = 32
_NONCE_LEN = 12
_TAG_LEN = 16
_SIGNATURE_LEN = 64
_HKDF_INFO = b"delegation envelope v1 aes-256-gcm"

# Fixed part: magic(8) version(1) flags(1) recipient_key_id(16) ephemeral(32) nonce(12) ct_len(4)
_FIXED = struct.Struct(f">{len(MAGIC)}sBB{KEY_ID_LEN}s{_EPHEMERAL_LEN}s{_NONCE_LEN}sI")
HEADER_LEN_UNSIGNED = _FIXED.size  # 74
HEADER_LEN_SIGNED = _FIXED.size + KEY_ID_LEN  # 90: the signer's key id follows


class KeyConfigError(ValueError):
    """A configured key file is missing or is not the kind of key expected (names the path only)."""


@dataclass(frozen=True, slots=True)
class SignerKey:
    """One submitter's signing key from the directory (submitters.csv)."""

    submitter_id: str
    public_key: str | bytes  # the directory's `public_key`: PEM, or base64 of the raw 32 bytes
    active: bool = True


@dataclass(frozen=True, slots=True)
class Opened:
    """A verified, decrypted envelope."""

    # repr=False: an Opened that ends up in a log line must not carry the workbook with it
    plaintext: bytes = field(repr=False)
    key_id: str
    signer_key_id: str | None = None
    submitted_by: str | None = None


@dataclass(frozen=True, slots=True)
class _Header:
    raw: bytes
    flags: int
    recipient_key_id: bytes
    ephemeral: bytes
    nonce: bytes
    ciphertext_len: int
    signer_key_id: bytes | None


# --- keys ---------------------------------------------------------------------------------------


def generate_intake_keypair() -> tuple[bytes, bytes]:
    """A new X25519 intake key pair as (private PKCS#8 PEM, public SPKI PEM)."""
    private = X25519PrivateKey.generate()
    return _private_pem(private), _public_pem(private.public_key())


def generate_signing_keypair() -> tuple[bytes, bytes]:
    """A new Ed25519 submitter signing pair as (private PKCS#8 PEM, public SPKI PEM)."""
    private = Ed25519PrivateKey.generate()
    return _private_pem(private), _public_pem(private.public_key())


def key_id(public_key_pem_or_raw: bytes | str) -> str:
    """The hex key id of an X25519 or Ed25519 public key: SHA-256 of its raw bytes, first 16."""
    return _key_id_raw(_raw_public(public_key_pem_or_raw)).hex()


def signer_key_id_of(public_key_text: str | bytes) -> str:
    """The key id of a submitter's Ed25519 key as in submitters.csv: PEM, or base64 of raw."""
    return _key_id_raw(_ed25519_public(public_key_text).public_bytes_raw()).hex()


def public_key_base64(public_key_pem: bytes | str) -> str:
    """The base64 of a public key's raw 32 bytes: the compact form for submitters.csv."""
    return base64.b64encode(_raw_public(public_key_pem)).decode("ascii")


def signers_from_rows(rows: Iterable[Mapping[str, object]]) -> dict[str, SignerKey]:
    """open_sealed's `signers` from submitters rows (submitter_id, public_key, status)."""
    signers: dict[str, SignerKey] = {}
    for row in rows:
        submitter_id, text = str(row["submitter_id"]), row["public_key"]
        try:
            if not isinstance(text, str | bytes):
                raise ValueError("no key text")
            kid = signer_key_id_of(text)
        except ValueError as exc:
            raise ValueError(f"submitter {submitter_id}: public_key is unusable: {exc}") from None
        # anything but "active" verifies nothing: a typo in status must not let a key through
        signers[kid] = SignerKey(submitter_id, text, str(row["status"]).strip() == "active")
    return signers


def load_private_keys(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[bytes]:
    """The intake private keys (PEM) from files; a str may hold several paths joined by ':'."""
    if isinstance(paths, str):
        items: list[str | os.PathLike] = [p for p in paths.split(":") if p.strip()]
    elif isinstance(paths, os.PathLike):
        items = [paths]
    else:
        items = list(paths)
    if not items:
        raise KeyConfigError("no intake private key file configured")
    keys = []
    for item in items:
        path = Path(item).expanduser()
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise KeyConfigError(f"cannot read intake private key file {path}: {exc.strerror}") from None
        try:
            _x25519_private(pem)
        except ValueError:
            raise KeyConfigError(f"{path} is not an X25519 intake private key (PEM)") from None
        keys.append(pem)
    return keys


def _key_id_raw(raw_public: bytes) -> bytes:
    return hashlib.sha256(raw_public).digest()[:KEY_ID_LEN]


def _private_pem(key: X25519PrivateKey | Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _public_pem(key: X25519PublicKey | Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode("ascii", "replace") if isinstance(value, str) else bytes(value)


def _is_pem(data: bytes) -> bool:
    return data.lstrip().startswith(b"-----BEGIN ")


def _b64_raw32(data: bytes) -> bytes | None:
    """The 32 bytes a standard or URL-safe base64 text decodes to, or None."""
    text = b"".join(data.split())
    # strict alphabet: lenient decoding skips stray characters and could turn junk into a key
    if not _B64.fullmatch(text):
        return None
    text = text.translate(_URLSAFE_TO_STANDARD)
    try:
        raw = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        return None
    return raw if len(raw) == 32 else None


_B64 = re.compile(rb"[A-Za-z0-9+/_-]+={0,2}")
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


def _raw_public(value: object) -> bytes:
    """The raw 32 public bytes of a key object, a public or private PEM, raw bytes or base64."""
    if isinstance(value, X25519PrivateKey | Ed25519PrivateKey):
        value = value.public_key()
    if isinstance(value, X25519PublicKey | Ed25519PublicKey):
        return value.public_bytes_raw()
    if not isinstance(value, bytes | bytearray | memoryview | str):
        raise TypeError(f"not a public key: {type(value).__name__}")
    data = _as_bytes(value) if isinstance(value, str) else bytes(value)
    if len(data) == 32 and not isinstance(value, str):
        return data
    if _is_pem(data):
        if b"PRIVATE KEY" in data.split(b"\n", 1)[0]:
            key = serialization.load_pem_private_key(data, password=None)
            if isinstance(key, X25519PrivateKey | Ed25519PrivateKey):
                return key.public_key().public_bytes_raw()
        else:
            pub = serialization.load_pem_public_key(data)
            if isinstance(pub, X25519PublicKey | Ed25519PublicKey):
                return pub.public_bytes_raw()
        raise ValueError("not an X25519 or Ed25519 key")
    raw = _b64_raw32(data)
    if raw is None:
        raise ValueError("not a PEM key, raw 32-byte key or base64 of one")
    return raw


def _x25519_public(pem: bytes | str) -> X25519PublicKey:
    data = _as_bytes(pem)
    if not _is_pem(data) and len(data) == 32:
        return X25519PublicKey.from_public_bytes(data)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise ValueError("not a PEM public key") from None
    if not isinstance(key, X25519PublicKey):
        raise ValueError("not an X25519 intake public key")
    return key


def _x25519_private(pem: bytes | X25519PrivateKey) -> X25519PrivateKey:
    if isinstance(pem, X25519PrivateKey):
        return pem
    try:
        key = serialization.load_pem_private_key(_as_bytes(pem), password=None)
    except (ValueError, TypeError):
        raise ValueError("not an unencrypted PEM private key") from None
    if not isinstance(key, X25519PrivateKey):
        raise ValueError("not an X25519 intake private key")
    return key


def _ed25519_private(pem: bytes | str | Ed25519PrivateKey) -> Ed25519PrivateKey:
    if isinstance(pem, Ed25519PrivateKey):
        return pem
    try:
        key = serialization.load_pem_private_key(_as_bytes(pem), password=None)
    except (ValueError, TypeError):
        raise ValueError("not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 signing key")
    return key


def _ed25519_public(text: str | bytes) -> Ed25519PublicKey:
    data = _as_bytes(text).strip()
    if _is_pem(data):
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError):
            raise ValueError("not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    raw = _b64_raw32(data)
    if raw is None:
        raise ValueError("not a PEM Ed25519 public key or base64 of its raw 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


# --- sealing ------------------------------------------------------------------------------------


def seal(plaintext: bytes, recipient_public_pem: bytes, signing_key_pem: bytes | None = None) -> bytes:
    """Encrypt `plaintext` to the intake's public key, signed when a signing key is given."""
    return _seal(
        plaintext,
        recipient_public_pem,
        signing_key_pem,
        ephemeral_private=X25519PrivateKey.generate(),
        nonce=os.urandom(_NONCE_LEN),
    )


def _seal(
    plaintext: bytes,
    recipient_public_pem: bytes | str,
    signing_key_pem: bytes | str | Ed25519PrivateKey | None,
    *,
    ephemeral_private: X25519PrivateKey | bytes,
    nonce: bytes,
) -> bytes:
    """seal() with the ephemeral key and nonce given: only for the committed test vectors."""
    recipient = _x25519_public(recipient_public_pem)
    if isinstance(ephemeral_private, bytes):
        ephemeral_private = X25519PrivateKey.from_private_bytes(ephemeral_private)
    if len(nonce) != _NONCE_LEN:
        raise ValueError(f"nonce must be {_NONCE_LEN} bytes")
    signer = None if signing_key_pem is None else _ed25519_private(signing_key_pem)

    ciphertext_len = len(plaintext) + _TAG_LEN
    total = ciphertext_len + (HEADER_LEN_SIGNED + _SIGNATURE_LEN if signer else HEADER_LEN_UNSIGNED)
    if total > MAX_SEALED_SIZE:
        # the intake would refuse it with FILE_TOO_LARGE: better to say so to the sender now
        raise ValueError(f"the sealed file would be {total} bytes, over the {MAX_SEALED_SIZE}-byte limit")

    ephemeral_raw = ephemeral_private.public_key().public_bytes_raw()
    recipient_raw = recipient.public_bytes_raw()
    header = _FIXED.pack(
        MAGIC,
        VERSION,
        FLAG_SIGNED if signer else 0,
        _key_id_raw(recipient_raw),
        ephemeral_raw,
        nonce,
        ciphertext_len,
    )
    if signer:
        header += _key_id_raw(signer.public_key().public_bytes_raw())
    aead_key = _derive_key(ephemeral_private.exchange(recipient), ephemeral_raw, recipient_raw)
    body = header + AESGCM(aead_key).encrypt(nonce, plaintext, header)
    return body + signer.sign(body) if signer else body


def _derive_key(shared_secret: bytes, ephemeral_raw: bytes, recipient_raw: bytes) -> bytes:
    # Both public keys in the salt bind the AEAD key to this exchange (as in HPKE's context).
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral_raw + recipient_raw, info=_HKDF_INFO)
    return hkdf.derive(shared_secret)


# --- opening ------------------------------------------------------------------------------------


def open_sealed(
    data: bytes,
    private_keys: Sequence[bytes],
    signers: Mapping[str, SignerKey] | None = None,
    require_signature: bool = False,
) -> Opened:
    """Verify and decrypt a sealed file, or raise FileRejected with a file-level code.

    Order: size, header, recipient key id, signature (when present, before any decryption), AEAD.
    `signers` maps signer key ids (signer_key_id_of) to the directory's submitters; None is an
    empty directory, so a signed file is then SIGNATURE_INVALID (its signer is unknown).
    """
    size = len(data)
    if size > MAX_SEALED_SIZE:
        raise FileRejected(Code.FILE_TOO_LARGE, f"the file is {size} bytes, over the {MAX_SEALED_SIZE}-byte limit")
    data = bytes(data)
    header = _parse_header(data)

    if isinstance(private_keys, bytes | str):
        raise TypeError("private_keys is a sequence of PEM keys, not one key")
    # The recipient key id names the key: no trial decryption with every configured key.
    keys = {_key_id_of_private(k): k for k in map(_x25519_private, private_keys)}
    private_key = keys.get(header.recipient_key_id)
    if private_key is None:
        configured = ", ".join(sorted(k.hex() for k in keys)) or "none"
        raise FileRejected(
            Code.DECRYPT_FAILED,
            f"sealed for key id {header.recipient_key_id.hex()}, which is not a configured"
            f" intake key (configured: {configured})",
        )

    signer = _verify_signature(data, header, signers, require_signature)
    plaintext = _decrypt(data, header, private_key)
    return Opened(
        plaintext=plaintext,
        key_id=header.recipient_key_id.hex(),
        signer_key_id=header.signer_key_id.hex() if header.signer_key_id else None,
        submitted_by=signer.submitter_id if signer else None,
    )


def _key_id_of_private(key: X25519PrivateKey) -> bytes:
    return _key_id_raw(key.public_key().public_bytes_raw())


def _parse_header(data: bytes) -> _Header:
    """The header, its lengths checked against the file's; reads a bounded prefix only."""
    if not data.startswith(MAGIC):
        if data and MAGIC.startswith(data):
            raise FileRejected(Code.DECRYPT_FAILED, f"truncated envelope: {len(data)} bytes")
        _refuse_unsealed(data)
    if len(data) < HEADER_LEN_UNSIGNED:
        raise FileRejected(
            Code.DECRYPT_FAILED,
            f"truncated envelope: {len(data)} bytes, shorter than the {HEADER_LEN_UNSIGNED}-byte header",
        )
    _magic, version, flags, recipient, ephemeral, nonce, ciphertext_len = _FIXED.unpack_from(data)
    if version != VERSION:
        raise FileRejected(
            Code.DECRYPT_FAILED,
            f"envelope version {version} is not supported (this intake reads {VERSION})",
        )
    if flags & ~FLAG_SIGNED:
        raise FileRejected(Code.DECRYPT_FAILED, f"unknown envelope flags 0x{flags:02x}")
    signed = bool(flags & FLAG_SIGNED)
    header_len = HEADER_LEN_SIGNED if signed else HEADER_LEN_UNSIGNED
    expected = header_len + ciphertext_len + (_SIGNATURE_LEN if signed else 0)
    if ciphertext_len < _TAG_LEN or len(data) != expected:
        what = "truncated" if len(data) < expected else "malformed"
        raise FileRejected(
            Code.DECRYPT_FAILED,
            f"{what} envelope: the header announces {expected} bytes, the file has {len(data)}",
        )
    return _Header(
        raw=data[:header_len],
        flags=flags,
        recipient_key_id=recipient,
        ephemeral=ephemeral,
        nonce=nonce,
        ciphertext_len=ciphertext_len,
        signer_key_id=data[HEADER_LEN_UNSIGNED:HEADER_LEN_SIGNED] if signed else None,
    )


def _verify_signature(
    data: bytes, header: _Header, signers: Mapping[str, SignerKey] | None, require_signature: bool
) -> SignerKey | None:
    """The verified signer, None for an unsigned file that may pass; else FileRejected."""
    if header.signer_key_id is None:
        if require_signature:
            raise FileRejected(Code.SIGNATURE_MISSING, "the sealed file carries no submitter signature")
        return None
    kid = header.signer_key_id.hex()
    signer = (signers or {}).get(kid)
    if signer is None:
        raise FileRejected(Code.SIGNATURE_INVALID, f"signed by key id {kid}: no known submitter's")
    if not signer.active:
        raise FileRejected(
            Code.SIGNATURE_INVALID,
            f"signed by submitter {signer.submitter_id} (key id {kid}), who is revoked",
        )
    try:
        public = _ed25519_public(signer.public_key)
    except ValueError:
        public = None
    # The mapping is keyed by key id; a key that does not hash to it would verify someone else.
    if public is None or _key_id_raw(public.public_bytes_raw()) != header.signer_key_id:
        raise FileRejected(
            Code.SIGNATURE_INVALID,
            f"the directory's key for submitter {signer.submitter_id} does not match key id {kid}",
        )
    signed_part, signature = data[:-_SIGNATURE_LEN], data[-_SIGNATURE_LEN:]
    try:
        public.verify(signature, signed_part)
    except InvalidSignature:
        raise FileRejected(
            Code.SIGNATURE_INVALID,
            f"the signature of submitter {signer.submitter_id} (key id {kid}) does not verify",
        ) from None
    return signer


def _decrypt(data: bytes, header: _Header, private_key: X25519PrivateKey) -> bytes:
    """Key agreement and AEAD: the only place plaintext comes from (tests watch it)."""
    start = len(header.raw)
    ciphertext = data[start : start + header.ciphertext_len]
    recipient_raw = private_key.public_key().public_bytes_raw()
    try:
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(header.ephemeral))
    except ValueError:
        # all-zero shared secret: a low-order ephemeral point, never produced by seal()
        raise FileRejected(Code.DECRYPT_FAILED, "the envelope's ephemeral key is invalid") from None
    aead_key = _derive_key(shared, header.ephemeral, recipient_raw)
    try:
        return AESGCM(aead_key).decrypt(header.nonce, ciphertext, header.raw)
    except InvalidTag:
        raise FileRejected(
            Code.DECRYPT_FAILED,
            f"the envelope for key id {header.recipient_key_id.hex()} does not authenticate:"
            " tampered, or sealed with a different key of the same id",
        ) from None


# --- recognising files that were never sealed ---------------------------------------------------

_SNIFF = 4096


def _refuse_unsealed(data: bytes) -> None:
    """Raise NOT_ENCRYPTED for a recognisable unsealed form, else DECRYPT_FAILED; never returns."""
    if not data:
        raise FileRejected(Code.DECRYPT_FAILED, "the file is empty")
    head = data[:_SNIFF]
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        _not_encrypted("a zip file (an .xlsx workbook?)")
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        _not_encrypted("an OLE file (a legacy .xls or a password-protected workbook?)")
    if b"%PDF-" in head[:1024]:  # PDF readers accept the marker anywhere in the first 1 KiB
        _not_encrypted("a PDF document")
    if _looks_like_text(data):
        _not_encrypted("plain text (a CSV?)")
    # An image is no form the sender meant to submit unsealed: to the intake it is unrecognisable
    # bytes. The message still says what it looks like, to help the operations mailbox.
    for magic, what in _OTHER_KINDS:
        if head.startswith(magic):
            raise FileRejected(Code.DECRYPT_FAILED, f"not a sealed envelope: the file looks like {what}")
    raise FileRejected(Code.DECRYPT_FAILED, "not a sealed envelope: unrecognised content")


_OTHER_KINDS = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
)


def _not_encrypted(what: str) -> None:
    raise FileRejected(
        Code.NOT_ENCRYPTED,
        f"the file is not sealed: it looks like {what};"
        " forms must be sealed with `delegation seal` before they are dropped",
    )


def _looks_like_text(data: bytes) -> bool:
    """True when the first 4 KiB decode as UTF-8 (or BOM-marked UTF-16) and are mostly printable."""
    head = data[:_SNIFF]
    final = len(data) <= _SNIFF
    utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))  # Excel's "Unicode Text"
    encoding = "utf-16" if utf16 else "utf-8-sig"
    try:
        # incremental: a multi-byte character cut at the 4 KiB boundary is not an error
        text = codecs.getincrementaldecoder(encoding)().decode(head, final=final)
    except UnicodeDecodeError:
        return False
    if not text or "\x00" in text:
        return False
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\t\n\r\f")
    return printable >= 0.95 * len(text)
