"""``bwcsim keys``: signing identities for principals, and the trust files cameras get.

An **identity file** belongs to one principal and holds its private key; it never leaves the
machine that signs (a dispatch console, a supervisor's tablet, a paired device)::

    # bwcsim signing identity: keep this file secret, it holds a private key.
    name: dispatch
    role: dispatch
    private_key: |
      -----BEGIN PRIVATE KEY-----
      ...

A **trust file** (:mod:`controller.principals`) holds public keys only; cameras are provisioned
with it. ``keys export`` builds one from identity files and from other trust files (public
parts sent in by their holders), merging the keys of a principal that appears more than once:
that is the rotation overlap (see ``docs/security.md``).

``keys sign`` wraps one event in a signed envelope (SPEC §14) for tools such as
``mosquitto_pub``; its default sequence number is the time in microseconds, which rises from
one invocation to the next on a machine whose clock does not go back.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from controller.errors import InvalidInput, ScenarioError
from controller.principals import TRUST_VERSION, Principal, TrustFile, encode_public_key, parse_trust
from controller.trust import sign
from controller.yamlsrc import load_yaml

__all__ = ["Identity", "export_trust", "load_identity", "new_identity", "sign_command", "trust_yaml"]

HEADER = "# bwcsim signing identity: keep this file secret, it holds a private key.\n"


class _IdentityFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    role: str
    private_key: str
    camera: str | None = None


@dataclass(frozen=True)
class Identity:
    """A principal with its private key."""

    name: str
    role: str
    camera: str | None
    key: Ed25519PrivateKey

    @property
    def public(self) -> str:
        return encode_public_key(self.key.public_key())


def new_identity(name: str, role: str, camera: str | None, out: Path, force: bool = False) -> Identity:
    """Generate a key for principal ``name`` and write its identity file (mode 0600)."""
    for value, option in ((name, "NAME"), (role, "--role")):
        if not value or any(c in value for c in "/+#\n"):
            raise InvalidInput(f"{value!r} must be non-empty, without / + # or newlines", option)
    identity = Identity(name, role, camera, Ed25519PrivateKey.generate())
    pem = identity.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    doc: dict[str, Any] = {"name": name, "role": role}
    if camera is not None:
        doc["camera"] = camera
    text = HEADER + yaml.safe_dump(doc, sort_keys=False) + "private_key: |\n" + "".join(
        f"  {line}\n" for line in pem.splitlines())
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(out, flags, 0o600)
    except FileExistsError:
        raise InvalidInput(f"{out} exists (a key is never overwritten silently; --force replaces it)",
                           "--out") from None
    except OSError as exc:
        raise InvalidInput(f"cannot write {out}: {exc.strerror}", "--out") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return identity


def load_identity(path: Path) -> Identity:
    """Read an identity file; errors name the file (and line and field when they can)."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read the identity file ({exc.strerror})", str(path)) from None
    doc = load_yaml(text, str(path))
    data = msgspec.convert(doc.data, dict[str, Any]) if isinstance(doc.data, dict) else doc.data
    try:
        spec = msgspec.convert(data, _IdentityFile)
    except msgspec.ValidationError as exc:
        raise doc.error(f"not an identity file: {exc}") from None
    try:
        key = load_pem_private_key(spec.private_key.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise doc.error(f"private_key: not a PEM private key ({exc})", ("private_key",)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise doc.error("private_key: not an Ed25519 key", ("private_key",))
    return Identity(spec.name, spec.role, spec.camera, key)


def _is_trust_file(path: Path) -> bool:
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "principals" in data


def export_trust(paths: list[Path]) -> TrustFile:
    """A trust file of every principal in ``paths`` (identity files or trust files).

    A principal met more than once keeps every key (the rotation overlap); its role and camera
    must agree everywhere.
    """
    merged: dict[str, Principal] = {}

    def add(p: Principal, where: Path) -> None:
        have = merged.get(p.name)
        if have is None:
            merged[p.name] = p
            return
        if (have.role, have.camera) != (p.role, p.camera):
            raise ScenarioError(
                f"principal {p.name!r} is {p.role}/{p.camera or '-'} here but "
                f"{have.role}/{have.camera or '-'} elsewhere", str(where))
        keys = have.keys + [k for k in p.keys if k not in have.keys]
        merged[p.name] = msgspec.structs.replace(have, keys=keys)

    for path in paths:
        if _is_trust_file(path):
            from controller.principals import load_trust

            for p in load_trust(path).principals:
                add(p, path)
        else:
            ident = load_identity(path)
            add(Principal(name=ident.name, role=ident.role, camera=ident.camera, keys=[ident.public]), path)
    trust = TrustFile(version=TRUST_VERSION, principals=list(merged.values()))
    parse_trust(load_yaml(trust_yaml(trust), "<exported>"))  # the same rules a camera applies
    return trust


def trust_yaml(trust: TrustFile) -> str:
    """A trust file as YAML, one principal per entry."""
    head = ("# bwcsim trust file: the principals a camera obeys, with their public keys.\n"
            "# Public data: provision cameras with it (bwcsim live --trust FILE).\n")
    doc = msgspec.to_builtins(trust)
    for p in doc["principals"]:
        if p.get("camera") is None:
            p.pop("camera", None)
    return head + yaml.safe_dump(doc, sort_keys=False, width=200)


def sign_command(identity: Identity, event: bytes, to: str, seq: int | None = None) -> bytes:
    """``event`` (a JSON object) with ``seq`` and ``to`` added, in a signed envelope."""
    try:
        body = msgspec.json.decode(event)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"not JSON: {exc}", "EVENT") from None
    if not isinstance(body, dict):
        raise InvalidInput("the event must be a JSON object", "EVENT")
    number = seq if seq is not None else time.time_ns() // 1000
    return sign(identity.key, identity.name, msgspec.json.encode({**body, "seq": number, "to": to}))
