"""Certificates of the local stack: a private CA and the Kafka broker's key and certificate.

Made once by ``creditrisk stack up`` under ``.stack/tls/`` (keys mode 0600) and kept. Clients
verify the broker against ``ca.pem`` (``CREDITRISK_KAFKA_SSL_CAFILE``); the broker also
proves itself with ``broker.pem`` to its own controller listener, which accepts nothing
else (mutual TLS). A deployment brings its own PKI and points the same settings at it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from infra.stack.private_files import write_private

BROKER_COMMON_NAME = "creditrisk-broker"
# Names the broker answers to: loopback for the local stack, the compose service names (one
# broker, or the cluster profile's three; every node of a quorum shares the certificate).
BROKER_DNS_NAMES = ("localhost", "kafka", "kafka-1", "kafka-2", "kafka-3")
BROKER_IP_ADDRESSES = ("127.0.0.1", "::1")
VALID_FOR = dt.timedelta(days=825)


@dataclass(frozen=True)
class BrokerTls:
    ca_certificate: Path  # what clients trust
    broker_keystore: Path  # private key, certificate, CA: one PEM file for Kafka

    @property
    def principal(self) -> str:
        """The Kafka principal of a client presenting the broker's certificate."""
        return f"User:CN={BROKER_COMMON_NAME}"


def ensure_broker_tls(folder: Path) -> BrokerTls:
    """The CA and broker certificate under ``folder``: made when missing or expiring.

    The nodes of a quorum are prepared side by side and each asks for them: they are made
    once, under a lock, and each file appears whole (written aside, then renamed), so every
    node gets the same CA and certificate. (Two CAs made at once left one node trusting a CA
    the others' certificates were not signed by: its quorum connections failed the TLS
    handshake and it exited during start-up.)"""
    files = BrokerTls(folder / "ca.pem", folder / "broker.pem")
    (folder / "ca-key.pem").unlink(missing_ok=True)  # kept by older versions: no longer
    if _usable(files):
        return files
    folder.mkdir(parents=True, exist_ok=True)  # ca.pem is public; the keys are owner-only
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _usable(files):  # else another node made them while this one waited
            _make(files)
    return files


def _usable(files: BrokerTls) -> bool:
    return (files.ca_certificate.exists() and files.broker_keystore.exists()
            and not _expiring(files))


def _make(files: BrokerTls) -> None:
    from cryptography.hazmat.primitives import serialization

    ca_key, ca_certificate = _certificate_authority()
    broker_key, broker_certificate = _broker_certificate(ca_key, ca_certificate)
    pem = serialization.Encoding.PEM
    # The CA's key signs the broker's certificate and is dropped: kept, it could make another
    # certificate the controller listener would take for the broker. A renewal makes a new CA.
    _replace_whole(files.ca_certificate, ca_certificate.public_bytes(pem), private=False)
    _replace_whole(files.broker_keystore, broker_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + broker_certificate.public_bytes(pem) + ca_certificate.public_bytes(pem))


def _replace_whole(path: Path, content: bytes, private: bool = True) -> None:
    draft = path.with_name(f".{path.name}.draft")
    if private:
        write_private(draft, content)
    else:
        draft.write_bytes(content)
    os.replace(draft, path)


def _expiring(files: BrokerTls) -> bool:
    from cryptography import x509

    certificate = x509.load_pem_x509_certificate(files.ca_certificate.read_bytes())
    return certificate.not_valid_after_utc - dt.datetime.now(dt.UTC) < dt.timedelta(days=30)


def _certificate_authority():  # type: ignore[no-untyped-def]  # cryptography's key types
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "creditrisk local stack CA")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256()))
    return key, certificate


def _broker_certificate(ca_key, ca_certificate):  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in BROKER_DNS_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in BROKER_IP_ADDRESSES]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_COMMON_NAME)]))
        .issuer_name(ca_certificate.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + VALID_FOR)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # The broker is a TLS server to clients and a TLS client of its controller listener.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256()))
    return key, certificate
