"""``bwcsim broker-config``: a Mosquitto configuration in which every client can do exactly its job.

Theory of operation
-------------------
A deployment file names the cameras (with their teams) and the principals who talk to them::

    prefix: bwc
    cameras:
      - {id: cam-1, teams: [sr-1]}
      - {id: cam-2, teams: [sr-1]}
    principals:
      - {name: cad-1, role: dispatch}                  # every camera, every team
      - {name: sgt-ray, role: supervisor, teams: [sr-1]}
      - {name: off-17, role: officer, camera: cam-1}
      - {name: holster-17, role: device, camera: cam-1}
      - {name: evidence, role: observer}

From it :func:`grants` derives one list of rights (user, publish or subscribe, topic filter), by
rule, and the two renderers turn the *same* list into a broker configuration:

* ``dynsec`` (default): Mosquitto's dynamic-security plugin. Its roles read like the rules —
  ``camera:cam-1``, ``team:sr-1``, ``role:dispatch``, ``principal:cad-1`` — and, unlike an ACL
  file, it answers a forbidden *subscription* with a refusal (SUBACK reason 0x87) that the camera
  reports, where Mosquitto 2.0's ACL file grants it and then delivers nothing.
* ``acl``: a password file and an ACL file with ``pattern`` rules for what every camera may do
  with its own topics (``%u`` is the camera's user name) and ``user`` blocks for the rest; for
  brokers without the plugin. Forbidden subscriptions pass in silence there (said in the file).

The rules:

================ ========================================================================
who              may
================ ========================================================================
camera C         publish ``C/{state,availability,ack,alert,recording,audit}``; subscribe
                 ``C/event``, ``C/event/+``, its own ``C/state`` and ``C/availability`` (to
                 notice a foreign write), and ``team/T/event[/+]`` for each of its teams
dispatch N       publish ``<cam>/event/N`` and ``team/<T>/event/N`` (every camera and team, or
                 those of its ``teams``); subscribe to their ack, state, availability, alert,
                 recording and audit
supervisor N     the same as dispatch (deactivate and reactivate go to cameras and teams)
officer N of C   publish ``C/event/N``; subscribe to C's ack, state, availability, alert,
                 recording and audit
device N of C    publish ``C/event/N``; subscribe to ``C/ack``
observer N       subscribe to every camera's state, availability, alert, recording, audit, ack
================ ========================================================================

Nobody may publish on a bare ``event`` topic: every command carries its sender's name as the last
topic level, and since each principal may write only under its own name, the camera knows from
the broker who sent what (its per-sender rate limit relies on it). Nobody but the camera may
write its status topics. Every connection's client id is its user name
(``use_username_as_clientid``), and in ``dynsec`` also bound to it, so nobody can take over the
camera's session and steal its triggers.

The configuration also sets what decides whether triggers survive the broker: persistence in a
directory the broker can write (saved every second), a ``max_queued_messages`` high enough for
the longest outage of a camera, and in-flight windows that match the camera's. Passwords are
random, one file per user under ``credentials/`` (kept when the configuration is generated
again), hashed with PBKDF2-SHA512 as ``mosquitto_passwd`` does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec

from controller.errors import InvalidInput
from controller.yamlsrc import SourceDoc, convert, load_yaml

__all__ = [
    "Deployment",
    "Grant",
    "Listener",
    "TlsListener",
    "dynsec_plugin_path",
    "grants",
    "load_deployment",
    "write_config",
]

Role = Literal["dispatch", "supervisor", "officer", "device", "observer"]
Backend = Literal["dynsec", "acl"]
CAMERA_TOPICS = ("state", "availability", "ack", "alert", "recording", "audit")
_READ = ("ack", "state", "availability", "alert", "recording", "audit")
_ITERATIONS = 101  # mosquitto_passwd's; the passwords are random 192-bit strings
_DYNSEC_PATHS = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
    "/opt/homebrew/lib/mosquitto_dynamic_security.so",
)


class CameraSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    teams: list[str] = []


class PrincipalSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    role: Role
    camera: str | None = None
    teams: list[str] = []


class Deployment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    cameras: list[CameraSpec]
    principals: list[PrincipalSpec] = []
    prefix: str = "bwc"


@dataclass(frozen=True)
class Grant:
    """One right: ``user`` may ``publish`` on, or ``subscribe`` to, ``topic``; ``rule`` says why
    (the dynsec role it belongs to)."""

    user: str
    access: Literal["publish", "subscribe"]
    topic: str
    rule: str


def load_deployment(path: Path) -> Deployment:
    """Read and check a deployment file; errors name the file, line and field (exit 2)."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", "DEPLOYMENT") from None
    doc = load_yaml(text, str(path))
    deployment = convert(doc, doc.data, Deployment)
    _check(deployment, doc)
    return deployment


def _check(dep: Deployment, doc: SourceDoc) -> None:
    error = doc.error

    def name_ok(name: str) -> bool:
        return bool(name) and not any(c in name for c in "/+#$%") and name != "team" and name.isprintable()

    if not name_ok(dep.prefix.replace("/", "")):
        raise error(f"prefix {dep.prefix!r} must be non-empty without + # $ %", ("prefix",))
    users: dict[str, str] = {}
    for i, cam in enumerate(dep.cameras):
        if not name_ok(cam.id):
            raise error(f"camera id {cam.id!r} must be non-empty, printable, without / + # $ % "
                        "and not 'team'", ("cameras", i, "id"))
        if cam.id in users:
            raise error(f"{cam.id!r} is already a {users[cam.id]}", ("cameras", i, "id"))
        users[cam.id] = "camera"
        for j, team in enumerate(cam.teams):
            if not name_ok(team):
                raise error(f"team {team!r} must be non-empty without / + # $ %", ("cameras", i, "teams", j))
    cameras = {c.id for c in dep.cameras}
    teams = {t for c in dep.cameras for t in c.teams}
    for i, p in enumerate(dep.principals):
        if not name_ok(p.name):
            raise error(f"principal name {p.name!r} must be non-empty, printable, without / + # $ %",
                        ("principals", i, "name"))
        if p.name in users:
            raise error(f"{p.name!r} is already a {users[p.name]}: a principal cannot share a name "
                        "with a camera or another principal", ("principals", i, "name"))
        users[p.name] = "principal"
        paired = p.role in ("officer", "device")
        if paired and p.camera not in cameras:
            raise error(f"a{'n' if p.role == 'officer' else ''} {p.role} needs `camera:` naming one of "
                        "the cameras", ("principals", i, "camera"))
        if not paired and p.camera is not None:
            raise error(f"a {p.role} is not paired with a camera (use `teams:` to scope it)",
                        ("principals", i, "camera"))
        for j, team in enumerate(p.teams):
            if team not in teams:
                raise error(f"no camera is in team {team!r}", ("principals", i, "teams", j))


def grants(dep: Deployment) -> list[Grant]:
    """Every right of every user, by the rules in the module docstring."""
    px = dep.prefix
    out: list[Grant] = []
    for cam in dep.cameras:
        rule = f"camera:{cam.id}"
        out += [Grant(cam.id, "publish", f"{px}/{cam.id}/{t}", rule) for t in CAMERA_TOPICS]
        out += [Grant(cam.id, "subscribe", f"{px}/{cam.id}/{t}", rule)
                for t in ("event", "event/+", "state", "availability")]
        for team in cam.teams:
            out += [Grant(cam.id, "subscribe", f"{px}/team/{team}/{t}", f"team:{team}")
                    for t in ("event", "event/+")]
    for p in dep.principals:
        own, role = f"principal:{p.name}", f"role:{p.role}"
        if p.role in ("dispatch", "supervisor"):
            if p.teams:
                cams = sorted({c.id for c in dep.cameras if set(c.teams) & set(p.teams)})
                out += [Grant(p.name, "publish", f"{px}/{c}/event/{p.name}", own) for c in cams]
                out += [Grant(p.name, "publish", f"{px}/team/{t}/event/{p.name}", own) for t in p.teams]
                out += [Grant(p.name, "subscribe", f"{px}/{c}/{t}", own) for c in cams for t in _READ]
            else:
                out += [Grant(p.name, "publish", f"{px}/+/event/{p.name}", own),
                        Grant(p.name, "publish", f"{px}/team/+/event/{p.name}", own)]
                out += [Grant(p.name, "subscribe", f"{px}/+/{t}", role) for t in _READ]
        elif p.role == "officer":
            out.append(Grant(p.name, "publish", f"{px}/{p.camera}/event/{p.name}", own))
            out += [Grant(p.name, "subscribe", f"{px}/{p.camera}/{t}", own) for t in _READ]
        elif p.role == "device":
            out.append(Grant(p.name, "publish", f"{px}/{p.camera}/event/{p.name}", own))
            out.append(Grant(p.name, "subscribe", f"{px}/{p.camera}/ack", own))
        else:  # observer
            out += [Grant(p.name, "subscribe", f"{px}/+/{t}", role) for t in _READ]
    return out


# ------------------------------------------------------------------------------ passwords


def _password(credentials: Path, user: str) -> str:
    """The user's password: kept from an earlier run, else a new random one (mode 0600)."""
    path = credentials / user
    if path.exists():
        return path.read_text("utf-8").strip()
    password = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(password + "\n")
    return password


def _pbkdf2(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS, 64)


def _passwd_line(user: str, password: str) -> str:
    salt = secrets.token_bytes(12)
    b64 = base64.b64encode
    return f"{user}:$7${_ITERATIONS}${b64(salt).decode()}${b64(_pbkdf2(password, salt)).decode()}"


# ------------------------------------------------------------------------------ rendering


def dynsec_plugin_path() -> str | None:
    """Where this machine keeps Mosquitto's dynamic-security plugin, if anywhere."""
    return next((p for p in _DYNSEC_PATHS if Path(p).exists()), None)


def _dynsec(dep: Deployment, rights: list[Grant], passwords: dict[str, str]) -> dict[str, object]:
    roles: OrderedDict[str, list[dict[str, object]]] = OrderedDict()
    members: OrderedDict[str, list[str]] = OrderedDict()
    for g in rights:
        acltype = "publishClientSend" if g.access == "publish" else "subscribePattern"
        acls = roles.setdefault(g.rule, [])
        acl = {"acltype": acltype, "topic": g.topic, "priority": 0, "allow": True}
        if acl not in acls:
            acls.append(acl)
        users = members.setdefault(g.user, [])
        if g.rule not in users:
            users.append(g.rule)
    clients = []
    for user, password in passwords.items():
        salt = secrets.token_bytes(12)
        clients.append({
            "username": user,
            "clientid": user,  # bound: no other client id may log in as this user
            "password": base64.b64encode(_pbkdf2(password, salt)).decode(),
            "salt": base64.b64encode(salt).decode(),
            "iterations": _ITERATIONS,
            "roles": [{"rolename": r, "priority": 0} for r in members.get(user, [])],
            "groups": [],
        })
    return {
        "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": True,
                             "subscribe": False, "unsubscribe": True},
        "clients": clients,
        "groups": [],
        "roles": [{"rolename": name, "acls": acls} for name, acls in roles.items()],
    }


def _acl_file(dep: Deployment, rights: list[Grant]) -> str:
    px = dep.prefix
    lines = [
        "# Generated by `bwcsim broker-config`. Mosquitto 2.0's ACL file checks reads when a",
        "# message is delivered, not when a client subscribes: a forbidden subscription is granted",
        "# and stays silent. Use the dynsec backend where the plugin is available.",
        "",
        "# What every camera may do with its own topics (%u: the camera's user name, its id).",
        *[f"pattern write {px}/%u/{t}" for t in CAMERA_TOPICS],
        *[f"pattern read {px}/%u/{t}" for t in ("event", "event/+", "state", "availability")],
    ]
    per_camera = {f"{px}/{c.id}/{t}" for c in dep.cameras for t in CAMERA_TOPICS}
    per_camera |= {f"{px}/{c.id}/{t}" for c in dep.cameras for t in ("event", "event/+", "state",
                                                                    "availability")}
    by_user: OrderedDict[str, list[str]] = OrderedDict()
    for g in rights:
        if g.rule.startswith("camera:") and g.topic in per_camera:
            continue  # covered by the patterns above
        verb = "write" if g.access == "publish" else "read"
        by_user.setdefault(g.user, []).append(f"topic {verb} {g.topic}")
    for user, rules in by_user.items():
        lines += ["", f"user {user}", *dict.fromkeys(rules)]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Listener:
    port: int = 1883
    bind: str = "127.0.0.1"


@dataclass(frozen=True)
class TlsListener:
    port: int
    cafile: Path
    certfile: Path
    keyfile: Path
    client_certs: bool = False


def _conf(dep: Deployment, out: Path, backend: Backend, listener: Listener, tls: TlsListener | None,
          plugin: str | None, run_as: str | None, max_queued: int, source: str) -> str:
    o = out.resolve()
    lines = [
        f"# Generated by `bwcsim broker-config` from {source}: {len(dep.cameras)} cameras, "
        f"{len(dep.principals)} principals, prefix {dep.prefix!r}.",
        "# Regenerate rather than edit: the rules live in the deployment file.",
        "per_listener_settings false",
        "allow_anonymous false",
        "",
        f"listener {listener.port} {listener.bind}",
        "# The client id is the user name: nobody can take over another client's session.",
        "use_username_as_clientid true",
    ]
    if tls is not None:
        lines += [
            "",
            f"listener {tls.port} {listener.bind}",
            f"cafile {tls.cafile.resolve()}",
            f"certfile {tls.certfile.resolve()}",
            f"keyfile {tls.keyfile.resolve()}",
            "tls_version tlsv1.2",
            "use_username_as_clientid true",
        ]
        if tls.client_certs:
            lines += ["# A client certificate is required; its common name is the user name.",
                      "require_certificate true", "use_identity_as_username true"]
    lines.append("")
    if backend == "dynsec":
        lines += [f"plugin {plugin or '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so'}",
                  f"plugin_opt_config_file {o / 'dynamic-security.json'}"]
    else:
        lines += [f"password_file {o / 'passwd'}", f"acl_file {o / 'acl'}"]
    lines += [
        "",
        "# Sessions and queued triggers must survive a broker restart: a directory the broker can",
        "# write, saved every second.",
        "persistence true",
        f"persistence_location {o / 'data'}/",
        "autosave_interval 1",
        "persistent_client_expiration 14d",
        "# A camera away for a while must find every trigger queued for it: Mosquitto's default",
        "# of 1000 drops the newest beyond that. Size it for the longest outage you plan for.",
        f"max_queued_messages {max_queued}",
        "max_inflight_messages 100",
        "# Small packets answered by small packets: without it a trigger's reply can wait ~40 ms.",
        "set_tcp_nodelay true",
    ]
    if run_as:
        lines.append(f"user {run_as}")
    return "\n".join(lines) + "\n"


def write_config(
    dep: Deployment,
    out: Path,
    *,
    backend: Backend = "dynsec",
    listener: Listener | None = None,
    tls: TlsListener | None = None,
    plugin: str | None = None,
    run_as: str | None = None,
    max_queued: int = 100_000,
    source: str = "a deployment file",
) -> list[Path]:
    """Write the broker configuration for ``dep`` into ``out``; returns the files written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        credentials = out / "credentials"
        credentials.mkdir(mode=0o700, exist_ok=True)
        (out / "data").mkdir(exist_ok=True)
        users = [c.id for c in dep.cameras] + [p.name for p in dep.principals]
        passwords = {u: _password(credentials, u) for u in users}
        rights = grants(dep)
        written = [out / "mosquitto.conf"]
        if backend == "dynsec":
            path = out / "dynamic-security.json"
            _write(path, json.dumps(_dynsec(dep, rights, passwords), indent=2) + "\n")
            written.append(path)
        else:
            _write(out / "passwd", "\n".join(_passwd_line(u, passwords[u]) for u in users) + "\n")
            _write(out / "acl", _acl_file(dep, rights))
            written += [out / "passwd", out / "acl"]
        _write(out / "mosquitto.conf",
               _conf(dep, out, backend, listener or Listener(), tls, plugin, run_as, max_queued, source))
        _write(out / "grants.txt", "".join(f"{g.user}\t{g.access}\t{g.topic}\t{g.rule}\n" for g in rights))
        written.append(out / "grants.txt")
    except OSError as exc:
        raise InvalidInput(f"cannot write {out}: {exc.strerror or exc}", "--out") from None
    return written


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
