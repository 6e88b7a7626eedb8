"""The desk's e-seal (kyc/eseal.py) and the master agreement (kyc/agreement.py): drawn deterministically, sealed
with a real PAdES signature by pyhanko, validated by pyhanko against the e-seal's root only and, independently,
by OpenSSL's CMS verifier over the PDF's byte range. A flipped byte, a foreign e-seal, a raw token all fail.
"""
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from io import BytesIO

import pypdf
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from otcdesk.app.kyc.agreement import (AgreementError, agreement_date, render_agreement, sha256, sign_agreement,
                                       signed_over, verify_agreement_pdf)
from otcdesk.app.kyc.eseal import ESEAL_CN, ESealError, generate_pki, load_eseal
from otcdesk.app.settings import load_settings

ID_NUMBER = "110101199003074514"
MOBILE = "13812345678"
SIGNED_AT = datetime(2026, 12, 1, 10, 0, 5, tzinfo=timezone.utc)


def application(**institution) -> dict:
    return {"id": "KA7F3Q2", "institution_id": 7, "state": "awaiting_signature", "awaiting_role": "client",
            "institution": {"name": "示例资产管理有限公司", "uscc": "91310000MA1FL0AB1X", "legal_representative": "王五",
                            "legal_representative_id": ID_NUMBER, "registered_capital_cny": 50_000_000,
                            "address": "上海市浦东新区示例路 1 号", "contact_name": "李四", "contact_mobile": MOBILE,
                            "investor_category": "professional", **institution},
            "history": [{"from": "submitted", "to": "sales_review", "by": "sales1", "role": "sales",
                         "at": "2026-11-30T08:00:00+00:00", "comment": ""},
                        {"from": "risk_review", "to": "awaiting_signature", "by": "risk1", "role": "risk",
                         "at": "2026-12-01T09:00:00+00:00", "comment": "同意"}]}


def acceptance(unsigned: bytes) -> dict:
    return {"token_sha256": hashlib.sha256(b"invitation-token").hexdigest(), "accepted_at": "2026-12-01T10:00:00+00:00",
            "content_sha256": sha256(unsigned)}


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(BytesIO(data)).pages)


@pytest.fixture
def eseal(tmp_path):
    return load_eseal(load_settings(data_dir=tmp_path / "desk", DATABASE_URL=None))


@pytest.fixture(scope="module")
def unsigned():
    return render_agreement(application())


@pytest.fixture
def signed(unsigned, eseal):
    return sign_agreement(unsigned, eseal, acceptance=acceptance(unsigned), signed_at=SIGNED_AT)


# --- the e-seal --------------------------------------------------------------------------------------------------

def test_eseal_is_generated_once_with_a_private_key_file_and_reused(tmp_path):
    settings = load_settings(data_dir=tmp_path, DATABASE_URL=None)
    first = load_eseal(settings)
    directory = tmp_path / "kyc" / "eseal"
    assert sorted(p.name for p in directory.iterdir()) == ["cert.pem", "key.pem"]
    assert stat.S_IMODE((directory / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert not [p for p in (tmp_path / "kyc").iterdir() if p.name != "eseal"]  # no temporary left behind
    again = load_eseal(settings)
    assert again.cert == first.cert and again.roots == first.roots
    assert again.key.private_numbers() == first.key.private_numbers()

    cert = first.cert
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == ESEAL_CN
    assert first.subject.startswith(f"CN={ESEAL_CN},O=")
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    (root,) = first.roots
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    # Only the e-seal's key is kept: the root's key was discarded once the certificate was issued.
    assert (directory / "key.pem").read_bytes().count(b"PRIVATE KEY-----") == 2
    assert b"PRIVATE KEY" not in (directory / "cert.pem").read_bytes()
    with pytest.raises(ESealError, match="no e-seal"):
        load_eseal(load_settings(data_dir=tmp_path / "other", DATABASE_URL=None), create=False)


_LOAD_WHEN_TOLD = """
import pathlib, sys, time
from cryptography.hazmat.primitives import hashes
from otcdesk.app.kyc.eseal import load_eseal
from otcdesk.app.settings import load_settings
data, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
while not go.exists():
    time.sleep(0.002)
print(load_eseal(load_settings(data_dir=data, DATABASE_URL=None)).cert.fingerprint(hashes.SHA256()).hex())
"""


def test_processes_starting_together_end_with_one_eseal(tmp_path):
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _LOAD_WHEN_TOLD, str(tmp_path / "desk"), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)]
    time.sleep(1.5)  # let them all import and wait
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err[-2000:] for _out, err in outs]
    fingerprints = {out.strip() for out, _err in outs}
    assert len(fingerprints) == 1, fingerprints
    assert sorted(p.name for p in (tmp_path / "desk" / "kyc").iterdir()) == ["eseal"]


def test_configured_eseal_files_are_used(tmp_path):
    key, certs = generate_pki("配置的交易台")
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    (tmp_path / "c.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    settings = load_settings(data_dir=tmp_path / "d", DATABASE_URL=None, eseal_key=tmp_path / "k.pem",
                             eseal_cert=tmp_path / "c.pem")
    es = load_eseal(settings)
    assert es.cert == certs[0] and es.roots == (certs[1],) and "O=配置的交易台" in es.subject
    assert not (tmp_path / "d" / "kyc").exists()  # nothing generated
    other, _ = generate_pki()
    (tmp_path / "k2.pem").write_bytes(other.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    with pytest.raises(ESealError, match="does not belong"):
        load_eseal(settings.model_copy(update={"eseal_key": tmp_path / "k2.pem"}))
    with pytest.raises(ESealError, match="both"):
        load_eseal(settings.model_copy(update={"eseal_cert": None}))


def test_a_configured_self_signed_rsa_eseal_signs_and_verifies(tmp_path, unsigned):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "自签名电子印章"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "某交易台")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
            .sign(key, hashes.SHA256()))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    es = load_eseal(load_settings(data_dir=tmp_path, DATABASE_URL=None, eseal_key=tmp_path / "k.pem",
                                  eseal_cert=tmp_path / "c.pem"))
    assert es.roots == (cert,)
    doc = verify_agreement_pdf(sign_agreement(unsigned, es, acceptance=acceptance(unsigned)), es)
    assert doc["valid"] and doc["signer"] == es.subject, doc


# --- the document -----------------------------------------------------------------------------------------------

def test_agreement_is_deterministic_and_filled_from_the_application(unsigned):
    assert render_agreement(application()) == unsigned
    text = pdf_text(unsigned)
    reader = pypdf.PdfReader(BytesIO(unsigned))
    assert len(reader.pages) >= 3
    for expected in ("场外衍生品交易主协议", "KA7F3Q2", "示例资产管理有限公司", "91310000MA1FL0AB1X", "王五",
                     "110101********4514", "138****5678", "专业投资者", "2026 年 12 月 1 日", "适用法律与争议解决",
                     "提前终止", "履约保障"):
        assert expected in text, expected
    assert ID_NUMBER not in text and MOBILE not in text
    assert reader.metadata.creation_date == datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    later = application()
    later["history"].append({"from": "x", "to": "y", "by": "z", "role": "risk", "at": "2026-12-03T09:00:00+00:00"})
    assert agreement_date(later).date().isoformat() == "2026-12-03"
    assert render_agreement(later) != unsigned
    assert render_agreement(application(name="另一家机构")) != unsigned


# --- the signature ----------------------------------------------------------------------------------------------

def test_sign_and_verify_round_trip(unsigned, signed, eseal):
    assert signed.startswith(unsigned) and signed_over(signed, sha256(unsigned))
    assert not signed_over(signed, sha256(b"something else"))
    doc = verify_agreement_pdf(signed, eseal)
    assert doc["valid"] and doc["intact"] and doc["trusted"], doc
    assert doc["coverage"] == "entire_file" and doc["signatures"] == 1 and doc["error"] is None
    assert doc["signer"] == eseal.subject
    assert doc["signed_at"] == SIGNED_AT.isoformat()
    assert doc["sha256"] == hashlib.sha256(signed).hexdigest()
    assert doc["acceptance"] == acceptance(unsigned)
    sig = pypdf.PdfReader(BytesIO(signed)).trailer["/Root"]["/AcroForm"]["/Fields"][0].get_object()["/V"]
    assert sig["/SubFilter"] == "/ETSI.CAdES.detached" and sig["/Reason"].startswith("client acceptance; ")
    assert "invitation-token" not in signed.decode("latin-1")


def test_a_flipped_byte_fails(signed, eseal):
    hex_at = signed.index(b"/Contents <") + len(b"/Contents <")
    header = bytes.fromhex(signed[hex_at:hex_at + 8].decode())
    assert header[:2] == b"\x30\x82"  # the CMS SignedData, a DER SEQUENCE with a two-byte length
    der_len = 4 + int.from_bytes(header[2:4], "big")
    targets = {"content stream": signed.index(b"stream\n", 2000) + 20,
               "signature value": hex_at + 2 * (der_len - 5),
               "middle of the file": len(signed) // 2}
    for what, at in targets.items():
        bad = bytearray(signed)
        bad[at] ^= 0x01
        doc = verify_agreement_pdf(bytes(bad), eseal)
        assert not doc["valid"], (what, doc)
        assert doc["sha256"] != hashlib.sha256(signed).hexdigest()
    doc = verify_agreement_pdf(signed[:-300], eseal)
    assert not doc["valid"] and doc["error"]
    assert not verify_agreement_pdf(render_agreement(application()), eseal)["valid"]  # unsigned
    # The zero padding after the CMS value is outside every signature's byte range (PDF's design), as are the
    # unsigned parts of the CMS (its certificate bag): a validator accepts such a change, which is why the stored
    # SHA-256 of the file is checked as well (`otcdesk kyc verify-agreement`).
    padded = bytearray(signed)
    padded[hex_at + 2 * der_len + 100] = ord("1")
    doc = verify_agreement_pdf(bytes(padded), eseal)
    assert doc["valid"] and doc["sha256"] != hashlib.sha256(signed).hexdigest()


def test_a_pdf_sealed_by_another_key_is_untrusted(unsigned, signed, eseal, tmp_path):
    foreign = load_eseal(load_settings(data_dir=tmp_path / "elsewhere", DATABASE_URL=None))  # same names, other keys
    forged = sign_agreement(unsigned, foreign, acceptance=acceptance(unsigned), signed_at=SIGNED_AT)
    doc = verify_agreement_pdf(forged, eseal)
    assert doc["intact"] and not doc["trusted"] and not doc["valid"], doc
    assert verify_agreement_pdf(forged, foreign)["valid"]
    assert not verify_agreement_pdf(signed, foreign)["trusted"]


def test_a_raw_token_is_never_embedded(unsigned, eseal):
    with pytest.raises(AgreementError, match="never the token"):
        sign_agreement(unsigned, eseal, acceptance={"token": "secret", **acceptance(unsigned)})


def test_bytes_appended_after_signing_are_not_the_agreement(signed, eseal):
    doc = verify_agreement_pdf(signed + b"\n% appended after signing\n", eseal)
    assert doc["intact"] and not doc["valid"] and doc["coverage"] != "entire_file", doc


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_verifies_the_cms_signature_over_the_byte_range(signed, eseal, tmp_path):
    """An independent validator: OpenSSL's CMS verifier, given the signed byte range and the desk's root."""
    byte_range = [int(x) for x in re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", signed).groups()]
    a, b, c, d = byte_range
    assert a == 0 and c + d == len(signed)  # the signature covers the whole file but its own value
    contents = signed[a + b:c]
    assert contents.startswith(b"<") and contents.endswith(b">")
    der = bytes.fromhex(contents[1:-1].decode())
    (tmp_path / "data.bin").write_bytes(signed[a:a + b] + signed[c:c + d])
    (tmp_path / "sig.der").write_bytes(der[:4 + int.from_bytes(der[2:4], "big")])  # without the zero padding
    (tmp_path / "root.pem").write_bytes(eseal.roots[0].public_bytes(serialization.Encoding.PEM))

    def openssl_verify(data: str) -> subprocess.CompletedProcess:
        return subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", "sig.der",
                               "-content", data, "-CAfile", "root.pem", "-purpose", "any", "-out", os.devnull],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)

    done = openssl_verify("data.bin")
    assert done.returncode == 0 and "Verification successful" in done.stderr, done.stderr
    tampered = bytearray((tmp_path / "data.bin").read_bytes())
    tampered[5000] ^= 0x01
    (tmp_path / "tampered.bin").write_bytes(bytes(tampered))
    assert openssl_verify("tampered.bin").returncode != 0
