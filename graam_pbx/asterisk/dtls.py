"""The DTLS certificate of browser phones' media, one per node, kept by the control plane.

A WebRTC call's media is DTLS-SRTP: each side shows a certificate in the DTLS handshake and
its fingerprint in SDP, and each checks the other's certificate against that fingerprint.
Nothing else vouches for it, so a self-signed certificate is the norm. Each node's generated
configuration holds one, ``dtls.pem`` (the key, then the certificate), which the phones'
endpoints name (migration 0026's ``ps_endpoints.dtls_cert_file``). The applier's full passes
call ``ensure``: the file is made when missing, unreadable, or within ``RENEW_BEFORE`` of its
end, and left alone otherwise; Asterisk reads it at each call's media set-up, so a renewed
certificate needs no reload.

ECDSA P-256 with SHA-256: what browsers offer themselves, and cheap to sign with at every
handshake.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from graam_pbx.files import PRIVATE, FileAccess, write_atomically

log = logging.getLogger(__name__)

FILE_NAME = "dtls.pem"
VALID_FOR = timedelta(days=365)
RENEW_BEFORE = timedelta(days=30)
COMMON_NAME = "graam-pbx media"


def valid_until(pem: bytes) -> datetime | None:
    """When the certificate in ``pem`` ends, or None when there is no readable one with its
    key."""
    try:
        serialization.load_pem_private_key(pem, password=None)
        return x509.load_pem_x509_certificate(pem).not_valid_after_utc
    except ValueError:
        return None


def make(now: datetime) -> bytes:
    """A new key and its self-signed certificate, valid from an hour before ``now`` (clocks
    differ) for ``VALID_FOR``: PEM, key first."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, COMMON_NAME)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + VALID_FOR)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem + certificate.public_bytes(serialization.Encoding.PEM)


def ensure(config_dir: Path, access: FileAccess = PRIVATE, now: datetime | None = None) -> bool:
    """Make ``config_dir``'s certificate when it is missing, unreadable or due for renewal,
    with the generated files' ``access`` (it holds the private key: as private as they are).
    Whether it was written. Blocking (file I/O and a key generation): run in a thread."""
    now = now or datetime.now(UTC)
    path = config_dir / FILE_NAME
    try:
        ends = valid_until(path.read_bytes())
    except FileNotFoundError:
        ends = None
    if ends is not None and ends - now > RENEW_BEFORE:
        return False
    write_atomically(path, make(now), access)
    log.info("dtls certificate %s path=%s", "made" if ends is None else "renewed", path)
    return True
