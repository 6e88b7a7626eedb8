"""The desk's e-seal (电子印章): the private key and certificate that sign master agreements.

Configured: `OTCDESK_ESEAL_KEY` (an unencrypted PEM private key) and `OTCDESK_ESEAL_CERT` (PEM: the e-seal's
certificate first, then its chain); the last certificate of that file is the trust root that validation uses.

Generated: without them, the first start makes a small desk PKI under `<data dir>/kyc/eseal/`: a self-signed
root CA (its private key is discarded once the e-seal certificate is issued, so nothing else can ever be issued
under it) and an ECDSA P-256 e-seal certificate (key usage digitalSignature + nonRepudiation). Files:
`key.pem` (mode 0600) and `cert.pem` (the e-seal certificate, then the root). The directory is written under a
temporary name and renamed into place, which fails when it already exists, so two processes starting together
end with one e-seal: the loser reads the winner's. Later starts reuse it.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID, ObjectIdentifier

DESK_ORG = "otcdesk 场外衍生品交易台"
ESEAL_CN = "otcdesk 电子印章"
ROOT_CN = "otcdesk 电子印章根证书"
ESEAL_DIR = "eseal"
_ROOT_YEARS, _LEAF_YEARS = 20, 10
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # id-kp-documentSigning (RFC 9336)


class ESealError(RuntimeError):
    """The configured e-seal cannot be loaded (missing file, key and certificate that do not match...)."""


@dataclass(frozen=True)
class ESeal:
    """The e-seal: `key` and `cert` (cryptography objects), `chain` (the certificates above `cert`, root last)
    and `roots`, the certificates a validator trusts. `signer()` and `validation_context()` are pyhanko's."""

    key: PrivateKeyTypes
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    roots: tuple[x509.Certificate, ...] = ()
    source: str = ""
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def subject(self) -> str:
        """The signer's subject as RFC 4514 text (`CN=otcdesk 电子印章,O=...`)."""
        return self.cert.subject.rfc4514_string()

    def signer(self):
        """A pyhanko `SimpleSigner` for this key and certificate (its chain in the registry, so it is embedded)."""
        if "signer" not in self._cache:
            from asn1crypto import keys
            from pyhanko.sign.signers import SimpleSigner
            from pyhanko_certvalidator.registry import SimpleCertificateStore

            key_der = self.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption())
            self._cache["signer"] = SimpleSigner(
                signing_cert=_asn1(self.cert), signing_key=keys.PrivateKeyInfo.load(key_der),
                cert_registry=SimpleCertificateStore.from_certs([_asn1(c) for c in self.chain]))
        return self._cache["signer"]

    def trust_roots(self) -> list:
        """The trust roots as asn1crypto certificates (what pyhanko's validation context takes)."""
        return [_asn1(c) for c in self.roots]

    def validation_context(self):
        """A pyhanko `ValidationContext` that trusts only the e-seal's roots (no network fetching)."""
        from pyhanko_certvalidator import ValidationContext

        return ValidationContext(trust_roots=self.trust_roots(), other_certs=[_asn1(c) for c in self.chain],
                                 allow_fetching=False)


def _asn1(cert: x509.Certificate):
    from asn1crypto import x509 as asn1_x509

    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def load_eseal(settings, *, create: bool = True) -> ESeal:
    """The desk's e-seal: the configured PEM files, else the one generated under `<data dir>/kyc/eseal/`
    (generated now when there is none, unless `create` is false: then ESealError)."""
    if settings.eseal_key or settings.eseal_cert:
        if not (settings.eseal_key and settings.eseal_cert):
            raise ESealError("set both OTCDESK_ESEAL_KEY and OTCDESK_ESEAL_CERT, or neither")
        return read_eseal(Path(settings.eseal_key), Path(settings.eseal_cert))
    directory = Path(settings.data_dir) / "kyc" / ESEAL_DIR
    if not (directory / "key.pem").is_file():
        if not create:
            raise ESealError(f"no e-seal in {directory} and none configured (OTCDESK_ESEAL_KEY/_CERT)")
        _generate_once(directory)
    return read_eseal(directory / "key.pem", directory / "cert.pem")


def read_eseal(key_path: Path, cert_path: Path) -> ESeal:
    """Load a PEM private key and a PEM certificate file (the e-seal's certificate, then its chain)."""
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        certs = x509.load_pem_x509_certificates(cert_path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise ESealError(f"cannot load the e-seal from {key_path} and {cert_path}: {exc}") from exc
    leaf, chain = certs[0], tuple(certs[1:])
    if leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
            != key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo):
        raise ESealError(f"the private key {key_path} does not belong to the certificate in {cert_path}")
    return ESeal(key=key, cert=leaf, chain=chain, roots=((chain or (leaf,))[-1],), source=str(cert_path.parent))


def _generate_once(directory: Path) -> None:
    """Generate the PKI into a temporary sibling directory and rename it to `directory`; when another process
    got there first the rename fails and its e-seal stands."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}-"))
    try:
        key, certs = generate_pki()
        key_file = tmp / "key.pem"
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
            f.flush()
            os.fsync(f.fileno())
        with open(tmp / "cert.pem", "wb") as f:
            f.write(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o700)
        try:
            os.rename(tmp, directory)  # atomic; fails when `directory` exists (and is not empty)
        except OSError:
            if not (directory / "key.pem").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def generate_pki(org: str = DESK_ORG, *, now: datetime | None = None) -> tuple[ec.EllipticCurvePrivateKey,
                                                                                  list[x509.Certificate]]:
    """A new e-seal key and `[e-seal certificate, root certificate]`; the root's key is not kept."""
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                           x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                           x509.NameAttribute(NameOID.COMMON_NAME, ROOT_CN)])
    root = (x509.CertificateBuilder()
            .subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=365 * _ROOT_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                                     x509.NameAttribute(NameOID.COMMON_NAME, ESEAL_CN)]))
            .issuer_name(root_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=365 * _LEAF_YEARS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([DOCUMENT_SIGNING]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    return key, [leaf, root]
