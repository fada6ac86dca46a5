"""``serve --tls``: a local certificate authority and the server certificate it signs.

The vendor's clients (its streaming examples among them) insist on HTTPS/WSS, so the emulator
must serve a certificate a client can be told to trust: the authority is made once and kept
(beside the ``--state`` file, else in the user's cache), so a client or trust store pointed at
its PEM file keeps trusting every later start; the server certificate it signs names every
address a local client dials. A caller's own authority or certificate is checked here, so that
a wrong file is a one-line error and not a traceback from granian's workers, which read the
certificate and key by path (again when one is respawned).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import socket
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_COMMON_NAME = "agentstatus-mock local CA"
CA_LIFETIME = datetime.timedelta(days=3650)
SERVER_LIFETIME = datetime.timedelta(days=397)
"""The longest a server certificate may live for browsers and Apple's clients to accept it."""
RENEW_BEFORE = datetime.timedelta(days=7)
"""A kept server certificate with less than this left is made anew at the next start."""
BACKDATE = datetime.timedelta(hours=1)
"""Certificates start this far back, so a client whose clock is a little behind takes them."""

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"


class TLSError(Exception):
    """Why the TLS files cannot be used, in one line for the command line to print."""


@dataclass(frozen=True)
class TLSOptions:
    """The ``--tls-*`` file options as given (None when absent)."""

    certificate: str | None = None
    key: str | None = None
    ca_certificate: str | None = None
    ca_key: str | None = None

    def any_given(self) -> bool:
        return any((self.certificate, self.key, self.ca_certificate, self.ca_key))


@dataclass(frozen=True)
class TLSFiles:
    """What granian serves and what clients are told to trust."""

    certificate: Path
    """The server certificate (then its issuer, when this module made it), PEM."""
    key: Path
    authority: Path | None
    """The authority's PEM file for ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE``; None for a
    caller's certificate given without ``--tls-ca-cert``."""


def tls_directory(state_file: str | None, environ: Mapping[str, str]) -> Path:
    """Where the local authority is kept: ``<state>.tls/`` beside a state file, else
    ``$XDG_CACHE_HOME/agentstatus-mock/tls`` (``~/.cache`` when unset or relative, as the XDG
    specification says)."""
    if state_file is not None:
        return Path(state_file + ".tls").absolute()
    cache = environ.get("XDG_CACHE_HOME", "")
    base = Path(cache) if os.path.isabs(cache) else Path.home() / ".cache"
    return base / "agentstatus-mock" / "tls"


def prepare_tls(options: TLSOptions, *, host: str, directory: Path) -> TLSFiles:
    """The files to serve for ``options``: the caller's certificate as it is, or one for
    ``host`` signed by the caller's authority or by the one kept in ``directory``."""
    if (options.certificate is None) != (options.key is None):
        raise TLSError("--tls-cert and --tls-key go together: give both or neither")
    if options.certificate is not None and options.key is not None:
        return _callers_certificate(options.certificate, options.key, options)
    if (options.ca_certificate is None) != (options.ca_key is None):
        raise TLSError(
            "--tls-ca-cert and --tls-ca-key go together: give both (or neither, for the local CA)"
        )
    names = server_names(host)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _locked(directory):
            if options.ca_certificate is not None and options.ca_key is not None:
                authority_path = Path(options.ca_certificate).absolute()
                authority, signer = _given_authority(authority_path, Path(options.ca_key))
            else:
                authority_path = directory / CA_FILE
                authority, signer = _local_authority(directory)
            certificate, key = _server_certificate(directory, authority, signer, names)
    except OSError as error:
        raise TLSError(f"TLS files in {directory}: {error.strerror or error}") from None
    return TLSFiles(certificate, key, authority_path)


def server_names(host: str) -> list[x509.GeneralName]:
    """The names a local client dials: localhost, both loopback addresses, the ``--host``
    value, and this machine's name when that value is a wildcard address."""
    wanted = ["localhost", "127.0.0.1", "::1", host.strip("[]")]
    try:
        if ipaddress.ip_address(wanted[-1]).is_unspecified:
            wanted.append(socket.gethostname())
    except ValueError:
        pass
    names: list[x509.GeneralName] = []
    for text in wanted:
        try:
            name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(text))
        except ValueError:
            name = x509.DNSName(text.lower())
        if name not in names:
            names.append(name)
    return names


def _callers_certificate(certificate: str, key: str, options: TLSOptions) -> TLSFiles:
    if options.ca_key is not None:
        raise TLSError(
            "--tls-ca-key signs a certificate this server makes; with --tls-cert it makes none"
        )
    certificate_path, key_path = Path(certificate).absolute(), Path(key).absolute()
    chain = _certificates(certificate_path, "--tls-cert")
    _matching_key(key_path, "--tls-key", chain[0], "--tls-cert")
    if options.ca_certificate is None:
        return TLSFiles(certificate_path, key_path, None)
    authority_path = Path(options.ca_certificate).absolute()
    authority = _certificates(authority_path, "--tls-ca-cert")[0]
    _require_authority(authority, f"--tls-ca-cert {authority_path}")
    if not any(item == authority or _issued_by(item, authority) for item in chain):
        raise TLSError(
            f"--tls-cert {certificate_path} was not issued by --tls-ca-cert {authority_path}"
        )
    return TLSFiles(certificate_path, key_path, authority_path)


def _given_authority(
    certificate_path: Path, key_path: Path
) -> tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes]:
    authority = _certificates(certificate_path, "--tls-ca-cert")[0]
    label = f"--tls-ca-cert {certificate_path}"
    _require_authority(authority, label)
    if authority.not_valid_after_utc <= _now():
        raise TLSError(f"{label}: expired on {authority.not_valid_after_utc:%Y-%m-%d}")
    key = _matching_key(key_path.absolute(), "--tls-ca-key", authority, "--tls-ca-cert")
    return authority, _signing_key(key, f"--tls-ca-key {key_path.absolute()}")


def _local_authority(directory: Path) -> tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes]:
    """The authority kept in ``directory``, made when there is none or it has expired; a
    damaged one is an error, not silently replaced, since clients may trust it."""
    certificate_path, key_path = directory / CA_FILE, directory / CA_KEY_FILE
    if certificate_path.exists():
        authority = _certificates(certificate_path, "the local CA")[0]
        if authority.not_valid_after_utc > _now():
            key = _matching_key(key_path, "the local CA's key", authority, "the local CA")
            return authority, _signing_key(key, f"the local CA's key {key_path}")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
    start = _now() - BACKDATE
    authority = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _private_pem(key), 0o600)
    _write(certificate_path, authority.public_bytes(serialization.Encoding.PEM), 0o644)
    return authority, key


def _server_certificate(
    directory: Path,
    authority: x509.Certificate,
    signer: CertificateIssuerPrivateKeyTypes,
    names: Sequence[x509.GeneralName],
) -> tuple[Path, Path]:
    """The kept certificate for these names and this authority while it is valid, else a new
    one. Each set of names has files of its own, so servers for other hosts sharing the
    directory never replace the files a running one's workers read."""
    digest = hashlib.sha256(authority.fingerprint(hashes.SHA256()))
    for name in names:
        digest.update(f"{type(name).__name__}={name.value}\n".encode())
    stem = f"server-{digest.hexdigest()[:16]}"
    certificate_path, key_path = directory / f"{stem}.pem", directory / f"{stem}-key.pem"
    if _reusable(certificate_path, key_path, authority, names):
        return certificate_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    start = _now() - BACKDATE
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agentstatus-mock")]))
        .issuer_name(authority.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(min(start + SERVER_LIFETIME, authority.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_identifier(authority, signer), critical=False)
        .sign(signer, _digest_for(signer))
    )
    chain = b"".join(
        item.public_bytes(serialization.Encoding.PEM) for item in (certificate, authority)
    )
    _write(key_path, _private_pem(key), 0o600)
    _write(certificate_path, chain, 0o644)
    return certificate_path, key_path


def _reusable(
    certificate_path: Path,
    key_path: Path,
    authority: x509.Certificate,
    names: Sequence[x509.GeneralName],
) -> bool:
    try:
        chain = x509.load_pem_x509_certificates(certificate_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        san = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm, x509.ExtensionNotFound):
        return False
    leaf, now = chain[0], _now()
    return (
        chain[1:] == [authority]
        and _issued_by(leaf, authority)
        and _same_public_key(key, leaf)
        and set(san) == set(names)
        and leaf.not_valid_before_utc <= now
        and leaf.not_valid_after_utc - now > RENEW_BEFORE
    )


def _certificates(path: Path, option: str) -> list[x509.Certificate]:
    data = _read(path, option)
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TLSError(f"{option} {path}: not a PEM certificate") from None


def _matching_key(
    path: Path, option: str, certificate: x509.Certificate, certificate_option: str
) -> PrivateKeyTypes:
    data = _read(path, option)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise TLSError(f"{option} {path}: the key is encrypted; give it unencrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise TLSError(f"{option} {path}: no private key (PEM) in it") from None
    if not _same_public_key(key, certificate):
        raise TLSError(f"{option} {path} does not match the certificate of {certificate_option}")
    return key


def _require_authority(certificate: x509.Certificate, label: str) -> None:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise TLSError(f"{label}: not a CA certificate (no basicConstraints CA:TRUE)")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.key_cert_sign:
        raise TLSError(f"{label}: not a CA certificate (its keyUsage lacks keyCertSign)")


def _signing_key(key: PrivateKeyTypes, label: str) -> CertificateIssuerPrivateKeyTypes:
    if isinstance(
        key,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey
        | dsa.DSAPrivateKey,
    ):
        return key
    raise TLSError(f"{label}: a {type(key).__name__} cannot sign certificates")


def _digest_for(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | None:
    """Ed25519 and Ed448 sign without a separate digest; the others with SHA-256."""
    return (
        None
        if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
        else hashes.SHA256()
    )


def _issued_by(certificate: x509.Certificate, authority: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(authority)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _same_public_key(key: PrivateKeyTypes, certificate: x509.Certificate) -> bool:
    form = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key.public_key().public_bytes(*form) == certificate.public_key().public_bytes(*form)


def _authority_key_identifier(
    authority: x509.Certificate, signer: CertificateIssuerPrivateKeyTypes
) -> x509.AuthorityKeyIdentifier:
    """Strict verifiers (Python 3.13's default context among them) want one, equal to the
    authority's own identifier when it has one (however that was computed)."""
    try:
        identifier = authority.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(identifier.value)


def _key_usage(*, key_cert_sign: bool = False, digital_signature: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _read(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TLSError(f"{option} {path}: no such file") from None
    except OSError as error:
        raise TLSError(f"{option} {path}: cannot be read ({error.strerror})") from None


def _write(path: Path, data: bytes, mode: int) -> None:
    """Whole or not at all: a reader (a worker, another start) never sees half a file."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One start at a time makes or checks the files, so two first starts share one authority."""
    import fcntl  # here, not at the top: there is none on Windows, where serve cannot run

    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
