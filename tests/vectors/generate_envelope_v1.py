"""Writes envelope-v1.json: the committed test vectors of docs/envelope.md (run from the repo root).

Every secret here is derived from a public label, so these keys protect nothing. The test
(tests/test_envelope.py) checks that the committed file still matches what seal() produces.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from loaders.envelope import _HKDF_INFO, _seal, key_id

OUT = Path(__file__).with_name("envelope-v1.json")
PLAINTEXT = b"Delegate User Form - envelope v1 test vector\n"


def _label(name: str) -> bytes:
    return hashlib.sha256(f"delegation envelope v1 test vector: {name}".encode()).digest()


def _pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def vector(name: str, signed: bool) -> dict:
    """One vector with every intermediate value another implementation may want to compare."""
    recipient = X25519PrivateKey.from_private_bytes(_label("recipient"))
    ephemeral = X25519PrivateKey.from_private_bytes(_label(f"{name} ephemeral"))
    nonce = _label(f"{name} nonce")[:12]
    signer = Ed25519PrivateKey.from_private_bytes(_label("signer")) if signed else None
    recipient_pub = recipient.public_key().public_bytes_raw()
    ephemeral_pub = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(recipient.public_key())
    salt = ephemeral_pub + recipient_pub
    aead_key = HKDF(hashes.SHA256(), 32, salt, _HKDF_INFO).derive(shared)
    sealed = _seal(
        PLAINTEXT,
        recipient.public_key().public_bytes_raw(),
        signer,
        ephemeral_private=ephemeral,
        nonce=nonce,
    )
    header_len = 90 if signed else 74
    v = {
        "name": name,
        "recipient_private_key_hex": recipient.private_bytes_raw().hex(),
        "recipient_private_key_pem": _pem(recipient),
        "recipient_public_key_hex": recipient_pub.hex(),
        "recipient_key_id": key_id(recipient_pub),
        "ephemeral_private_key_hex": ephemeral.private_bytes_raw().hex(),
        "ephemeral_public_key_hex": ephemeral_pub.hex(),
        "nonce_hex": nonce.hex(),
        "shared_secret_hex": shared.hex(),
        "hkdf_salt_hex": salt.hex(),
        "hkdf_info_hex": _HKDF_INFO.hex(),
        "aead_key_hex": aead_key.hex(),
        "plaintext_hex": PLAINTEXT.hex(),
        "header_hex": sealed[:header_len].hex(),
    }
    if signer:
        signer_pub = signer.public_key().public_bytes_raw()
        v |= {
            "signer_private_key_hex": signer.private_bytes_raw().hex(),
            "signer_private_key_pem": _pem(signer),
            "signer_public_key_hex": signer_pub.hex(),
            "signer_public_key_base64": base64.b64encode(signer_pub).decode(),
            "signer_key_id": key_id(signer_pub),
            "ciphertext_hex": sealed[header_len:-64].hex(),
            "signature_hex": sealed[-64:].hex(),
        }
    else:
        v["ciphertext_hex"] = sealed[header_len:].hex()
    v["sealed_hex"] = sealed.hex()
    return v


def main() -> None:
    doc = {
        "format": "delegation envelope v1, see docs/envelope.md",
        "note": "every key here is derived from a public label: test use only",
        "vectors": [vector("unsigned", signed=False), vector("signed", signed=True)],
    }
    OUT.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
