"""The browser phones' DTLS certificate: made when missing or unreadable, kept while valid,
made again within 30 days of its end; the key and the certificate in one private file."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from graam_pbx.asterisk import dtls

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def test_a_missing_certificate_is_made_private_and_self_signed(tmp_path: Path) -> None:
    assert dtls.ensure(tmp_path, now=NOW) is True
    path = tmp_path / dtls.FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    certificate = x509.load_pem_x509_certificate(pem)
    assert certificate.issuer == certificate.subject
    assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
    assert certificate.not_valid_before_utc <= NOW
    assert dtls.valid_until(pem) == NOW.replace(microsecond=0) + dtls.VALID_FOR


def test_a_valid_certificate_is_kept_and_one_near_its_end_is_made_again(tmp_path: Path) -> None:
    dtls.ensure(tmp_path, now=NOW)
    first = (tmp_path / dtls.FILE_NAME).read_bytes()
    later = NOW + dtls.VALID_FOR - dtls.RENEW_BEFORE - timedelta(days=1)
    assert dtls.ensure(tmp_path, now=later) is False
    assert (tmp_path / dtls.FILE_NAME).read_bytes() == first
    due = NOW + dtls.VALID_FOR - dtls.RENEW_BEFORE + timedelta(days=1)
    assert dtls.ensure(tmp_path, now=due) is True
    renewed = (tmp_path / dtls.FILE_NAME).read_bytes()
    assert renewed != first
    assert dtls.valid_until(renewed) == due.replace(microsecond=0) + dtls.VALID_FOR


def test_an_unreadable_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / dtls.FILE_NAME).write_bytes(b"not a certificate")
    assert dtls.ensure(tmp_path, now=NOW) is True
    assert dtls.valid_until((tmp_path / dtls.FILE_NAME).read_bytes()) is not None
