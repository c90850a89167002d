"""The trust file: the principals a camera trusts, with their public keys (SPEC §14, R-AUTH).

A camera is provisioned with this file and nothing secret: each principal has a name, a role
(what the role may send is the policy's business), optionally the one camera it is bound to
(officers and paired devices), and one or more Ed25519 public keys. Several keys are the
rotation overlap: any of them verifies, and sequence numbers belong to the principal, not to
the key, so a new key carries on from the old one's count.

```yaml
version: 1
principals:
  - {name: dispatch, role: dispatch, keys: ["ed25519:<base64url of 32 bytes>"]}
  - {name: officer-cam-1, role: officer, camera: cam-1, keys: ["ed25519:..."]}
```

Each key belongs to exactly one principal (the loader refuses a key listed twice), so a
signature names its signer beyond doubt. Plain data: a ``TrustFile`` travels in the camera
setup and serialises as it is.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .errors import ScenarioError
from .messages import Text
from .yamlsrc import SourceDoc, convert, load_yaml

__all__ = [
    "KEY_PREFIX",
    "TRUST_VERSION",
    "Principal",
    "TrustFile",
    "b64url",
    "decode_public_key",
    "encode_public_key",
    "load_trust",
    "parse_trust",
    "unb64url",
]

TRUST_VERSION = 1
KEY_PREFIX = "ed25519:"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_public_key(key: Ed25519PublicKey) -> str:
    """``ed25519:<base64url of the 32 raw bytes>``, as a trust file lists keys."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return KEY_PREFIX + b64url(key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def decode_public_key(text: str) -> Ed25519PublicKey:
    """The key of an ``ed25519:...`` string; ``ValueError`` naming the problem otherwise."""
    if not text.startswith(KEY_PREFIX):
        raise ValueError(f"a key is written {KEY_PREFIX}<base64url of 32 bytes>, got {text[:20]!r}")
    try:
        raw = unb64url(text[len(KEY_PREFIX):])
    except (binascii.Error, ValueError):
        raise ValueError("the key is not base64url") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, this one {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


class Principal(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One sender the camera trusts: its role, the camera it is bound to, its public keys.

    Several keys are the rotation overlap: each of them verifies, and the sequence numbers
    are the principal's, not the key's, so a new key carries on from the old one's count.
    """

    name: Text
    role: Text
    keys: list[str]
    camera: Text | None = None


class TrustFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a camera is provisioned with: the principals it trusts (public keys only)."""

    version: int
    principals: list[Principal]


def parse_trust(doc: SourceDoc) -> TrustFile:
    """Validate a trust document; errors name the file, line and field."""
    trust = convert(doc, doc.data, TrustFile)
    if trust.version != TRUST_VERSION:
        raise doc.error(f"unsupported trust file version {trust.version} (supported: {TRUST_VERSION})",
                        ("version",))
    names: dict[str, int] = {}
    owners: dict[str, str] = {}
    for i, p in enumerate(trust.principals):
        where = ("principals", i)
        if not p.name or not p.role:
            raise doc.error("a principal needs a non-empty name and role", where)
        if p.name in names:
            raise doc.error(f"principal {p.name!r} is listed twice (first at principals[{names[p.name]}])",
                            (*where, "name"))
        names[p.name] = i
        if not p.keys:
            raise doc.error(f"principal {p.name!r} has no key", (*where, "keys"))
        for k, text in enumerate(p.keys):
            try:
                decode_public_key(text)
            except ValueError as exc:
                raise doc.error(str(exc), (*where, "keys", k)) from None
            # One key, one principal: a signature then names its signer beyond doubt.
            if owners.setdefault(text, p.name) != p.name:
                raise doc.error(f"this key already belongs to {owners[text]!r}", (*where, "keys", k))
    return trust


def load_trust(path: str | Path) -> TrustFile:
    """Read and validate the trust file at ``path``."""
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read the trust file ({exc.strerror})", str(path)) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", str(path)) from None
    return parse_trust(load_yaml(text, str(path)))
