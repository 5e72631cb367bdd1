"""The sealed envelope v1 (docs/envelope.md): round trips, vectors, refusals."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from grants.errors import Code, FileRejected
from loaders import envelope
from loaders.envelope import (
    HEADER_LEN_SIGNED,
    HEADER_LEN_UNSIGNED,
    MAGIC,
    MAX_SEALED_SIZE,
    KeyConfigError,
    SignerKey,
    generate_intake_keypair,
    generate_signing_keypair,
    key_id,
    load_private_keys,
    open_sealed,
    public_key_base64,
    seal,
    signer_key_id_of,
    signers_from_rows,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "envelope-v1.json").read_text())["vectors"]
PLAINTEXT = b"PK\x03\x04" + random.Random(4).randbytes(3000)  # shaped like a workbook


@pytest.fixture(scope="module")
def intake():
    return generate_intake_keypair()


@pytest.fixture(scope="module")
def other_intake():
    return generate_intake_keypair()


@pytest.fixture(scope="module")
def submitter():
    return generate_signing_keypair()


@pytest.fixture(scope="module")
def other_submitter():
    return generate_signing_keypair()


@pytest.fixture(scope="module")
def revoked_submitter():
    return generate_signing_keypair()


@pytest.fixture(scope="module")
def signers(submitter, other_submitter, revoked_submitter):
    """A directory with S1 (PEM) and S2 (base64 of the raw key) active, and S9 revoked."""
    return {
        signer_key_id_of(submitter[1]): SignerKey("S1", submitter[1].decode(), True),
        signer_key_id_of(other_submitter[1]): SignerKey("S2", public_key_base64(other_submitter[1])),
        signer_key_id_of(revoked_submitter[1]): SignerKey("S9", revoked_submitter[1].decode(), False),
    }


@pytest.fixture
def no_decryption(monkeypatch):
    """Makes any call of the one decrypting function fail the test loudly."""

    def forbidden(*args, **kwargs):
        raise AssertionError("_decrypt was called: the file was decrypted before being refused")

    monkeypatch.setattr(envelope, "_decrypt", forbidden)


def _refused(data, keys, code, **kwargs) -> str:
    with pytest.raises(FileRejected) as info:
        open_sealed(data, keys, **kwargs)
    assert info.value.code == code, info.value.error.message
    return info.value.error.message


# --- round trips --------------------------------------------------------------------------------


def test_an_unsigned_form_opens_to_its_plaintext_and_names_the_intake_key(intake):
    opened = open_sealed(seal(PLAINTEXT, intake[1]), [intake[0]])
    assert opened.plaintext == PLAINTEXT
    assert opened.key_id == key_id(intake[1])
    assert opened.signer_key_id is None
    assert opened.submitted_by is None


def test_a_signed_form_opens_with_its_verified_submitter(intake, submitter, signers):
    sealed = seal(PLAINTEXT, intake[1], submitter[0])
    opened = open_sealed(sealed, [intake[0]], signers, require_signature=True)
    assert opened.plaintext == PLAINTEXT
    assert opened.signer_key_id == signer_key_id_of(submitter[1])
    assert opened.submitted_by == "S1"


def test_a_signer_listed_in_the_directory_as_base64_of_the_raw_key_verifies(intake, other_submitter, signers):
    sealed = seal(PLAINTEXT, intake[1], other_submitter[0])
    assert open_sealed(sealed, [intake[0]], signers).submitted_by == "S2"


def test_an_empty_form_and_a_form_at_exactly_the_size_limit_both_round_trip(intake):
    assert open_sealed(seal(b"", intake[1]), [intake[0]]).plaintext == b""
    biggest = bytes(MAX_SEALED_SIZE - HEADER_LEN_UNSIGNED - 16)
    sealed = seal(biggest, intake[1])
    assert len(sealed) == MAX_SEALED_SIZE
    assert open_sealed(sealed, [intake[0]]).plaintext == biggest


def test_sealing_a_form_the_intake_would_refuse_as_too_large_fails_at_the_sender(intake):
    with pytest.raises(ValueError, match="limit"):
        seal(bytes(MAX_SEALED_SIZE), intake[1])


def test_two_seals_of_the_same_form_differ(intake):
    assert seal(PLAINTEXT, intake[1]) != seal(PLAINTEXT, intake[1])


def test_the_opened_value_never_shows_the_plaintext_in_its_repr(intake):
    opened = open_sealed(seal(b"secret-workbook-bytes", intake[1]), [intake[0]])
    assert "secret" not in repr(opened)


# --- committed vectors --------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_the_committed_vector_opens_to_its_plaintext(vector):
    signers = {}
    if "signer_key_id" in vector:
        signers[vector["signer_key_id"]] = SignerKey("V", vector["signer_public_key_base64"])
    opened = open_sealed(
        bytes.fromhex(vector["sealed_hex"]),
        [vector["recipient_private_key_pem"].encode()],
        signers,
        require_signature="signer_key_id" in vector,
    )
    assert opened.plaintext == bytes.fromhex(vector["plaintext_hex"])
    assert opened.key_id == vector["recipient_key_id"]
    assert opened.signer_key_id == vector.get("signer_key_id")


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_sealing_with_the_vectors_fixed_inputs_gives_exactly_the_committed_bytes(vector):
    recipient = X25519PrivateKey.from_private_bytes(bytes.fromhex(vector["recipient_private_key_hex"]))
    public_pem = recipient.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    sealed = envelope._seal(
        bytes.fromhex(vector["plaintext_hex"]),
        public_pem,
        vector.get("signer_private_key_pem", "").encode() or None,
        ephemeral_private=bytes.fromhex(vector["ephemeral_private_key_hex"]),
        nonce=bytes.fromhex(vector["nonce_hex"]),
    )
    assert sealed.hex() == vector["sealed_hex"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_the_vector_can_be_rebuilt_from_the_documented_primitives_alone(vector):
    """A second implementation of docs/envelope.md, byte by byte, without loaders.envelope."""
    h = {k: bytes.fromhex(v) for k, v in vector.items() if k.endswith("_hex")}
    recipient = X25519PrivateKey.from_private_bytes(h["recipient_private_key_hex"])
    ephemeral = X25519PrivateKey.from_private_bytes(h["ephemeral_private_key_hex"])
    recipient_pub = recipient.public_key().public_bytes_raw()
    ephemeral_pub = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(recipient.public_key())
    assert shared == recipient.exchange(ephemeral.public_key()) == h["shared_secret_hex"]
    info = b"delegation envelope v1 aes-256-gcm"
    aead_key = HKDF(hashes.SHA256(), 32, ephemeral_pub + recipient_pub, info).derive(shared)
    assert aead_key == h["aead_key_hex"]

    signed = "signer_private_key_hex" in vector
    header = (
        b"\x89DLG\r\n\x1a\n"
        + bytes([1, 1 if signed else 0])
        + hashlib.sha256(recipient_pub).digest()[:16]
        + ephemeral_pub
        + h["nonce_hex"]
        + (len(h["plaintext_hex"]) + 16).to_bytes(4, "big")
    )
    if signed:
        signer = Ed25519PrivateKey.from_private_bytes(h["signer_private_key_hex"])
        header += hashlib.sha256(signer.public_key().public_bytes_raw()).digest()[:16]
    assert header == h["header_hex"]
    body = header + AESGCM(aead_key).encrypt(h["nonce_hex"], h["plaintext_hex"], header)
    expected = body + signer.sign(body) if signed else body
    assert expected == h["sealed_hex"]


# --- keys: ids, rotation, wrong keys ------------------------------------------------------------


def test_a_key_id_is_the_first_16_bytes_of_sha256_of_the_raw_key_in_any_spelling(submitter):
    raw = serialization.load_pem_public_key(submitter[1]).public_bytes_raw()
    expected = hashlib.sha256(raw).digest()[:16].hex()
    b64 = base64.b64encode(raw).decode()
    assert key_id(submitter[1]) == key_id(raw) == key_id(submitter[0]) == expected
    assert signer_key_id_of(submitter[1]) == signer_key_id_of(submitter[1].decode()) == expected
    assert signer_key_id_of(b64) == signer_key_id_of(f"  {b64[:20]}\n{b64[20:]} ") == expected
    assert signer_key_id_of(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == expected


def test_a_signer_key_id_refuses_what_is_not_an_ed25519_public_key(intake):
    junk = "AAAA*AAAA" * 5  # lenient base64 would skip the stars and find 32 bytes
    for bad in (intake[1], "not a key", base64.b64encode(bytes(31)).decode(), junk):
        with pytest.raises(ValueError):
            signer_key_id_of(bad)


def test_signers_from_directory_rows_key_each_submitter_by_key_id(submitter, other_submitter):
    rows = [
        {"submitter_id": "S1", "public_key": submitter[1].decode(), "status": "active"},
        {
            "submitter_id": "S2",
            "public_key": public_key_base64(other_submitter[1]),
            "status": "revoked",
        },
    ]
    registry = signers_from_rows(rows)
    assert registry[signer_key_id_of(submitter[1])] == SignerKey("S1", submitter[1].decode(), True)
    assert registry[signer_key_id_of(other_submitter[1])].active is False


def test_signers_from_rows_name_the_submitter_whose_key_is_unusable(intake):
    rows = [{"submitter_id": "S7", "public_key": intake[1].decode(), "status": "active"}]
    with pytest.raises(ValueError, match="S7"):
        signers_from_rows(rows)


def test_a_form_sealed_to_another_intake_key_is_refused_naming_its_key_id(intake, other_intake):
    message = _refused(seal(PLAINTEXT, other_intake[1]), [intake[0]], Code.DECRYPT_FAILED)
    assert key_id(other_intake[1]) in message
    assert key_id(intake[1]) in message  # and which keys are configured


def test_a_header_rewritten_to_a_configured_key_id_does_not_authenticate(intake, other_intake):
    sealed = bytearray(seal(PLAINTEXT, other_intake[1]))
    sealed[10:26] = bytes.fromhex(key_id(intake[1]))
    message = _refused(bytes(sealed), [intake[0]], Code.DECRYPT_FAILED)
    assert "authenticate" in message


def test_during_rotation_either_configured_key_opens_the_forms_sealed_to_it(intake, other_intake):
    keys = [intake[0], other_intake[0]]
    for public in (intake[1], other_intake[1]):
        opened = open_sealed(seal(PLAINTEXT, public), keys)
        assert opened.plaintext == PLAINTEXT
        assert opened.key_id == key_id(public)


def test_no_configured_key_refuses_every_form_as_undecryptable(intake):
    message = _refused(seal(PLAINTEXT, intake[1]), [], Code.DECRYPT_FAILED)
    assert "none" in message


def test_private_keys_load_from_a_colon_separated_list_of_files(tmp_path, intake, other_intake):
    (tmp_path / "old.key").write_bytes(intake[0])
    (tmp_path / "new.key").write_bytes(other_intake[0])
    joined = f"{tmp_path / 'new.key'}:{tmp_path / 'old.key'}:"
    assert load_private_keys(joined) == [other_intake[0], intake[0]]
    assert load_private_keys([tmp_path / "old.key"]) == [intake[0]]
    assert load_private_keys(tmp_path / "old.key") == [intake[0]]


def test_loading_private_keys_names_a_missing_or_wrong_file_but_never_its_content(tmp_path, intake, submitter):
    (tmp_path / "intake.pub").write_bytes(intake[1])
    (tmp_path / "submitter.key").write_bytes(submitter[0])
    for name in ("missing.key", "intake.pub", "submitter.key"):
        with pytest.raises(KeyConfigError) as info:
            load_private_keys(str(tmp_path / name))
        assert name in str(info.value)
        assert "BEGIN" not in str(info.value)
    with pytest.raises(KeyConfigError):
        load_private_keys("")


# --- signatures: checked before anything is decrypted -------------------------------------------


def test_the_no_decryption_guard_really_watches_the_decrypting_function(intake, submitter, signers, no_decryption):
    with pytest.raises(AssertionError, match="_decrypt was called"):
        open_sealed(seal(PLAINTEXT, intake[1], submitter[0]), [intake[0]], signers)


def test_a_form_signed_by_a_revoked_submitter_is_refused_undecrypted(intake, revoked_submitter, signers, no_decryption):
    sealed = seal(PLAINTEXT, intake[1], revoked_submitter[0])
    message = _refused(sealed, [intake[0]], Code.SIGNATURE_INVALID, signers=signers)
    assert "S9" in message and "revoked" in message


def test_a_form_signed_by_an_unknown_key_is_refused_undecrypted(intake, signers, no_decryption):
    stranger = generate_signing_keypair()
    sealed = seal(PLAINTEXT, intake[1], stranger[0])
    message = _refused(sealed, [intake[0]], Code.SIGNATURE_INVALID, signers=signers)
    assert signer_key_id_of(stranger[1]) in message
    # without any directory at all, a signer is unknown too
    _refused(sealed, [intake[0]], Code.SIGNATURE_INVALID)


@pytest.mark.parametrize("position", [0, 31, 63])
def test_a_form_with_altered_signature_bytes_is_refused_undecrypted(
    intake, submitter, signers, no_decryption, position
):
    sealed = bytearray(seal(PLAINTEXT, intake[1], submitter[0]))
    sealed[len(sealed) - 64 + position] ^= 0x01
    message = _refused(bytes(sealed), [intake[0]], Code.SIGNATURE_INVALID, signers=signers)
    assert "does not verify" in message


def test_a_signature_taken_from_another_file_of_the_same_submitter_is_refused_undecrypted(
    intake, submitter, signers, no_decryption
):
    sealed = seal(PLAINTEXT, intake[1], submitter[0])
    other = seal(b"PK\x03\x04 another form", intake[1], submitter[0])
    swapped = sealed[:-64] + other[-64:]
    _refused(swapped, [intake[0]], Code.SIGNATURE_INVALID, signers=signers)


def test_a_signer_key_id_altered_to_another_known_submitter_is_refused_undecrypted(
    intake, submitter, other_submitter, signers, no_decryption
):
    sealed = bytearray(seal(PLAINTEXT, intake[1], submitter[0]))
    sealed[HEADER_LEN_UNSIGNED:HEADER_LEN_SIGNED] = bytes.fromhex(signer_key_id_of(other_submitter[1]))
    message = _refused(bytes(sealed), [intake[0]], Code.SIGNATURE_INVALID, signers=signers)
    assert "S2" in message


def test_a_signer_key_id_altered_to_an_unknown_one_is_refused_undecrypted(intake, submitter, signers, no_decryption):
    sealed = bytearray(seal(PLAINTEXT, intake[1], submitter[0]))
    sealed[HEADER_LEN_UNSIGNED] ^= 0x80
    _refused(bytes(sealed), [intake[0]], Code.SIGNATURE_INVALID, signers=signers)


def test_a_directory_entry_whose_key_does_not_match_its_key_id_verifies_nothing(
    intake, submitter, other_submitter, no_decryption
):
    wrong = {signer_key_id_of(submitter[1]): SignerKey("S1", other_submitter[1].decode())}
    sealed = seal(PLAINTEXT, intake[1], submitter[0])
    _refused(sealed, [intake[0]], Code.SIGNATURE_INVALID, signers=wrong)


def test_a_ciphertext_altered_under_a_valid_signer_is_refused_undecrypted(intake, submitter, signers, no_decryption):
    sealed = bytearray(seal(PLAINTEXT, intake[1], submitter[0]))
    sealed[HEADER_LEN_SIGNED + 100] ^= 0x04
    _refused(bytes(sealed), [intake[0]], Code.SIGNATURE_INVALID, signers=signers)


def test_stripping_the_signature_does_not_make_an_unsigned_form_that_opens(intake, submitter, signers):
    sealed = seal(PLAINTEXT, intake[1], submitter[0])
    header = bytearray(sealed[:HEADER_LEN_UNSIGNED])
    header[9] = 0  # clear the "signed" flag
    stripped = bytes(header) + sealed[HEADER_LEN_SIGNED:-64]
    # the header (signer key id and flag included) is the AEAD's associated data
    assert "authenticate" in _refused(stripped, [intake[0]], Code.DECRYPT_FAILED)
    _refused(stripped, [intake[0]], Code.SIGNATURE_MISSING, require_signature=True)


def test_a_file_re_signed_by_another_active_submitter_does_not_decrypt(intake, submitter, other_submitter, signers):
    sealed = seal(PLAINTEXT, intake[1], submitter[0])
    header = bytearray(sealed[:HEADER_LEN_SIGNED])
    header[HEADER_LEN_UNSIGNED:] = bytes.fromhex(signer_key_id_of(other_submitter[1]))
    body = bytes(header) + sealed[HEADER_LEN_SIGNED:-64]
    forged = body + serialization.load_pem_private_key(other_submitter[0], None).sign(body)
    # the signature is S2's and verifies, but the signer key id is bound into the AEAD
    message = _refused(forged, [intake[0]], Code.DECRYPT_FAILED, signers=signers)
    assert "authenticate" in message


def test_an_unsigned_form_is_refused_undecrypted_when_signatures_are_required(intake, signers, no_decryption):
    sealed = seal(PLAINTEXT, intake[1])
    _refused(sealed, [intake[0]], Code.SIGNATURE_MISSING, signers=signers, require_signature=True)


def test_an_unsigned_form_is_accepted_when_signatures_are_not_required(intake, signers):
    opened = open_sealed(seal(PLAINTEXT, intake[1]), [intake[0]], signers)
    assert (opened.plaintext, opened.submitted_by) == (PLAINTEXT, None)


# --- files that are not envelopes ---------------------------------------------------------------


def _xlsx_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


UNSEALED = {
    "xlsx": _xlsx_bytes(),
    "empty zip": b"PK\x05\x06" + bytes(18),
    "legacy xls": bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504),
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
    "csv": "Requester First Name,Requester Last Name\nMai,Nguyễn\n".encode(),
    "csv with a BOM": b"\xef\xbb\xbfAccount ID\n0000000001\n",
    "utf-16 text": "Account ID\t0000000001\r\n".encode("utf-16"),
}


@pytest.mark.parametrize("data", UNSEALED.values(), ids=UNSEALED.keys())
def test_a_recognisably_unsealed_file_is_refused_as_not_encrypted(intake, data):
    message = _refused(data, [intake[0]], Code.NOT_ENCRYPTED)
    assert "delegation seal" in message
    assert "Nguy" not in message and "0000000001" not in message  # no content quoted


UNRECOGNISED = {
    "empty": b"",
    "random bytes": random.Random(7).randbytes(5000),
    "png image": b"\x89PNG\r\n\x1a\n" + random.Random(8).randbytes(200),
    "jpeg image": b"\xff\xd8\xff\xe0" + random.Random(9).randbytes(200),
    "the magic alone": MAGIC,
    "part of the magic": MAGIC[:5],
    "a header with nothing after it": seal(b"x", generate_intake_keypair()[1])[:HEADER_LEN_UNSIGNED],
}


@pytest.mark.parametrize("data", UNRECOGNISED.values(), ids=UNRECOGNISED.keys())
def test_unrecognisable_bytes_are_refused_as_undecryptable(intake, data):
    _refused(data, [intake[0]], Code.DECRYPT_FAILED)


def test_an_image_is_undecryptable_and_the_message_says_what_it_looks_like(intake):
    assert "PNG" in _refused(UNRECOGNISED["png image"], [intake[0]], Code.DECRYPT_FAILED)


def test_an_envelope_of_a_future_version_is_refused_naming_the_version(intake):
    sealed = bytearray(seal(PLAINTEXT, intake[1]))
    sealed[8] = 2
    assert "version 2" in _refused(bytes(sealed), [intake[0]], Code.DECRYPT_FAILED)


def test_unknown_flag_bits_are_refused(intake):
    sealed = bytearray(seal(PLAINTEXT, intake[1]))
    sealed[9] |= 0x02
    _refused(bytes(sealed), [intake[0]], Code.DECRYPT_FAILED)


def test_bytes_appended_to_an_envelope_are_refused(intake):
    _refused(seal(PLAINTEXT, intake[1]) + b"\0", [intake[0]], Code.DECRYPT_FAILED)


@pytest.mark.parametrize(
    "data",
    [MAGIC + bytes(MAX_SEALED_SIZE), bytes(MAX_SEALED_SIZE + 1), b"PK\x03\x04" * (3 * 2**20)],
    ids=["sealed-looking", "zeros", "zip"],
)
def test_a_file_over_10_mib_is_too_large_whatever_it_holds(intake, data, monkeypatch):
    def forbidden(data):
        raise AssertionError("the header of an oversized file was parsed")

    monkeypatch.setattr(envelope, "_parse_header", forbidden)
    assert str(MAX_SEALED_SIZE) in _refused(data, [intake[0]], Code.FILE_TOO_LARGE)


def test_no_refusal_message_holds_plaintext_or_key_material(intake, other_intake, submitter):
    secret = b"TOP-SECRET-WORKBOOK-CONTENT" * 10
    sealed = seal(secret, intake[1], submitter[0])
    cases = [
        seal(secret, other_intake[1]),
        sealed,
        sealed[:-1],
        sealed[:200],
        bytes(sealed[:100]) + bytes([sealed[100] ^ 1]) + sealed[101:],
        secret,
    ]
    forbidden = [b"TOP-SECRET", *_key_fragments(intake), *_key_fragments(submitter)]
    for data in cases:
        for require in (False, True):
            with pytest.raises(FileRejected) as info:
                open_sealed(data, [intake[0]], require_signature=require)
            text = str(info.value).encode()
            assert not [f for f in forbidden if f in text], text


def _key_fragments(pair):
    private = serialization.load_pem_private_key(pair[0], None)
    raw = private.private_bytes_raw()
    body = b"".join(pair[0].splitlines()[1:-1])
    return [raw.hex().encode(), base64.b64encode(raw), body[16:40]]
