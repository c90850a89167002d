"""Client-certificate TLS with the certificate's identity as the user name (R-ISOLATE), against a
private Mosquitto run with the configuration ``bwcsim broker-config --tls-client-certs`` writes.

The certificates are made here, in a temporary folder, with ``cryptography``: a CA, the broker's
certificate for 127.0.0.1, one client certificate per principal (its common name is the name in
the deployment file), and one from a CA the broker does not trust. On the TLS listener a client
sends no password: the broker takes the user name from the certificate, so the rules of the
generated ACL apply to whoever holds the key, whatever user name the client claims.
"""

from __future__ import annotations

import contextlib
import datetime
import getpass
import ipaddress
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from brokers import LOOPBACK, free_loopback_port, mosquitto_binary
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from secured_broker import DEPLOYMENT

from controller.errors import BusError, BusRefused
from sim.live.brokerconfig import Listener, TlsListener, dynsec_plugin_path, load_deployment, write_config
from sim.live.bus import MqttBus, MqttEndpoint, TlsFiles

pytestmark = pytest.mark.req("R-ISOLATE")


# ------------------------------------------------------------------------------ certificates


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def _issue(subject: str, issuer: x509.Name, issuer_key: ec.EllipticCurvePrivateKey,
           key: ec.EllipticCurvePrivateKey, *, ca: bool = False, server: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class Pki:
    """A CA, the broker's certificate and client certificates, as PEM files in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = _issue("bwcsim test CA", _name("bwcsim test CA"), self.ca_key, self.ca_key, ca=True)
        self.cafile = folder / "ca.pem"
        self.cafile.write_bytes(self.ca.public_bytes(serialization.Encoding.PEM))
        self.server = self._pair("broker", server=True)

    def _pair(self, name: str, *, server: bool = False, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey]
              | None = None) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        issuer_name, issuer_key = issuer or (self.ca.subject, self.ca_key)
        cert = _issue(name, issuer_name, issuer_key, key, server=server)
        certfile, keyfile = self.folder / f"{name}.crt", self.folder / f"{name}.key"
        certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, keyfile)
        return certfile, keyfile

    def client(self, name: str) -> TlsFiles:
        certfile, keyfile = self._pair(name)
        return TlsFiles(cafile=str(self.cafile), certfile=str(certfile), keyfile=str(keyfile))

    def stranger(self, name: str) -> TlsFiles:
        """A certificate with a trusted-looking name from a CA the broker does not know."""
        other_key = ec.generate_private_key(ec.SECP256R1())
        certfile, keyfile = self._pair(f"{name}-stranger", issuer=(_name("bwcsim test CA"), other_key))
        return TlsFiles(cafile=str(self.cafile), certfile=str(certfile), keyfile=str(keyfile))


# ------------------------------------------------------------------------------------ broker


@contextlib.contextmanager
def _tls_broker(workdir: Path, backend: str) -> Iterator[tuple[int, Pki]]:
    binary = mosquitto_binary()
    if binary is None:
        pytest.skip("not installed: mosquitto")
    if backend == "dynsec" and dynsec_plugin_path() is None:
        pytest.skip("not installed: mosquitto_dynamic_security.so")
    pki = Pki(workdir / "pki")
    plain, tls_port = free_loopback_port(), free_loopback_port()
    source = workdir / "deployment.yaml"
    source.write_text(DEPLOYMENT.format(prefix="bwc"))
    config = workdir / "broker"
    server_cert, server_key = pki.server
    write_config(load_deployment(source), config, backend=backend,  # type: ignore[arg-type]
                 listener=Listener(plain),
                 tls=TlsListener(tls_port, pki.cafile, server_cert, server_key, client_certs=True),
                 plugin=dynsec_plugin_path(), run_as=getpass.getuser(), source=str(source))
    log_path = workdir / "mosquitto.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([binary, "-c", str(config / "mosquitto.conf")], stdout=log,
                                   stderr=subprocess.STDOUT, cwd=workdir)
    try:
        deadline = time.monotonic() + 10
        import socket

        while True:
            if process.poll() is not None:
                raise AssertionError(f"mosquitto did not start: {log_path.read_text(errors='replace')}")
            with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, tls_port), timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise AssertionError("mosquitto did not open its TLS listener")
            time.sleep(0.05)
        yield tls_port, pki
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _endpoint(port: int, tls: TlsFiles, username: str | None = None) -> MqttEndpoint:
    return MqttEndpoint(LOOPBACK, port, username=username, tls=tls, protocol="5", timeout_s=5.0)


async def _can_publish(bus: MqttBus, topic: str) -> bool:
    try:
        await bus.publish(topic, b'{"id":"tls-1","type":"reactivate"}', qos=1)
    except BusRefused:
        return False
    return True


@pytest.mark.parametrize("backend", ["acl", "dynsec"])
async def test_the_certificate_s_common_name_is_the_user_the_acl_judges(tmp_path: Path, backend: str) -> None:
    with _tls_broker(tmp_path, backend) as (port, pki):
        # Dispatch, by its certificate alone (no password): it may command any camera under its own name.
        cad = MqttBus(_endpoint(port, pki.client("cad-1")))
        await cad.connect("cad-1", clean_session=True)
        try:
            assert await _can_publish(cad, "bwc/cam-1/event/cad-1")
            assert await _can_publish(cad, "bwc/cam-2/event/cad-1")
            assert not await _can_publish(cad, "bwc/cam-1/event/sgt-ray"), "not under another's name"
        finally:
            await cad.disconnect()

        # A device's certificate claiming to be dispatch in CONNECT: the certificate wins.
        device = MqttBus(_endpoint(port, pki.client("holster-17"), username="cad-1"))
        await device.connect("holster-17", clean_session=True)
        try:
            assert not await _can_publish(device, "bwc/cam-1/event/cad-1"), "the claimed name is nothing"
            assert not await _can_publish(device, "bwc/cam-2/event/holster-17"), "another camera"
            assert await _can_publish(device, "bwc/cam-1/event/holster-17"), "its own camera, its own name"
        finally:
            await device.disconnect()


async def test_no_certificate_or_one_from_another_ca_gets_no_connection(tmp_path: Path) -> None:
    with _tls_broker(tmp_path, "acl") as (port, pki):
        bare = TlsFiles(cafile=str(pki.cafile))  # the broker is trusted, the client shows nothing
        for files, user in ((bare, "cad-1"), (pki.stranger("cad-1"), None)):
            bus = MqttBus(_endpoint(port, files, username=user))
            with pytest.raises(BusError):
                await bus.connect("cad-1", clean_session=True)
            with contextlib.suppress(BusError):
                await bus.disconnect()
