"""``agentstatus-mock serve --tls``: HTTPS on granian with a certificate real clients trust once
they are pointed at the printed authority (``REQUESTS_CA_BUNDLE``, ``SSL_CERT_FILE``)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from conftest import DEMO_TENANT, DEMO_TOKEN, DEMO_USERNAME, api_path, read_line
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mock_server.serving.tls import TLSOptions, prepare_tls

BIN = Path(sys.executable).parent
MOCK = str(BIN / "agentstatus-mock")
BANNER = "Agent Status API emulator on "
CA_LINE = "TLS CA: "


@dataclass
class Started:
    base: str
    """``https://127.0.0.1:PORT``"""
    lines: list[str]
    """What the server printed up to and with the banner."""

    @property
    def ca(self) -> Path:
        (line,) = [line for line in self.lines if line.startswith(CA_LINE)]
        return Path(line.removeprefix(CA_LINE))

    @property
    def agents(self) -> str:
        return self.base + api_path()


def cache_env(tmp_path: Path) -> dict[str, str]:
    """The environment with the user cache (where the local authority is kept) in tmp_path."""
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return env


SLOW_LISTEN = """
import sys, time
from granian.server import mp
listening = mp.RSGIWorker
def slow(*args, **kwargs):
    time.sleep(1.0)
    return listening(*args, **kwargs)
mp.RSGIWorker = slow
from mock_server.cli import main
sys.exit(main(sys.argv[1:]))
"""
"""``agentstatus-mock`` whose granian workers start listening a second after their app is
built (forked workers inherit the patch), as a worker on a loaded machine may."""


@contextmanager
def serving(
    tmp_path: Path,
    *options: str,
    env: Mapping[str, str] | None = None,
    command: tuple[str, ...] = (MOCK,),
) -> Iterator[Started]:
    """``serve --port 0 OPTIONS`` until the banner; stopped (SIGTERM to its group) afterwards."""
    process = subprocess.Popen(
        [*command, "serve", "--port", "0", "--quiet", *options],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(env if env is not None else cache_env(tmp_path)),
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not lines or not lines[-1].startswith(BANNER):
            line = read_line(process.stdout).rstrip("\n")
            assert line or process.poll() is None, f"the server ended: {lines}"
            lines.append(line)
            assert len(lines) < 5, lines
        root = lines[-1].removeprefix(BANNER).removesuffix("/api/v1")
        yield Started(root, lines)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def failing(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MOCK, "serve", "--port", "0", *options],
        capture_output=True,
        text=True,
        timeout=60,
        env=cache_env(tmp_path),
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("agentstatus-mock: "), result.stderr
    for word in words:
        assert word in result.stderr


def run_python(code: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=dict(env)
    )


def test_tls_serves_the_api_and_control_plane_over_https_trusted_through_the_printed_ca(
    tmp_path: Path,
) -> None:
    with serving(tmp_path, "--tls") as served:
        assert served.lines[0].startswith(CA_LINE)
        assert served.base.startswith("https://127.0.0.1:")
        assert served.ca == tmp_path / "cache" / "agentstatus-mock" / "tls" / "ca.pem"
        reply = requests.get(served.agents, auth=(DEMO_USERNAME, DEMO_TOKEN), verify=served.ca)
        assert reply.status_code == 200
        assert reply.json()
        assert requests.get(f"{served.base}/__admin/health", verify=served.ca).status_code == 200


def test_the_curl_line_under_tls_names_the_authority(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [MOCK, "serve", "--port", "0", "--tls"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=cache_env(tmp_path),
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        ca = read_line(process.stdout).strip().removeprefix(CA_LINE)
        read_line(process.stdout)  # the banner
        curl = read_line(process.stdout)
        assert f"curl --cacert '{ca}' --location 'https://127.0.0.1:" in curl
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        process.stdout.close()  # type: ignore[union-attr]


@pytest.mark.parametrize("options", [(), ("--tls",)], ids=["http", "https"])
def test_the_banner_comes_once_the_workers_listen(tmp_path: Path, options: tuple[str, ...]) -> None:
    """A worker says it is ready when its app is built and listens a moment later (TLS makes
    that moment longer); a client that read the banner must not find the port closed."""
    slow = (sys.executable, "-c", SLOW_LISTEN)
    with serving(tmp_path, *options, "--workers", "2", command=slow) as served:
        verify: Path | bool = served.ca if options else True
        for _ in range(4):
            reply = requests.get(
                f"{served.base}/__admin/health",
                verify=verify,
                headers={"Connection": "close"},
                timeout=10,
            )
            assert reply.status_code == 200


def test_requests_trusts_it_through_requests_ca_bundle(tmp_path: Path) -> None:
    with serving(tmp_path, "--tls") as served:
        code = (
            "import requests\n"
            f"print(requests.get({served.agents!r}, auth=({DEMO_USERNAME!r}, {DEMO_TOKEN!r}))"
            ".status_code)"
        )
        env = cache_env(tmp_path)
        result = run_python(code, {**env, "REQUESTS_CA_BUNDLE": str(served.ca)})
        assert result.stdout.strip() == "200", result.stderr
        untrusted = run_python(code, env)
        assert untrusted.returncode == 1
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr


def test_a_client_without_the_authority_fails_verification(tmp_path: Path) -> None:
    with serving(tmp_path, "--tls") as served, pytest.raises(requests.exceptions.SSLError):
        requests.get(served.agents, auth=(DEMO_USERNAME, DEMO_TOKEN), timeout=10)


def test_the_default_ssl_context_and_httpx_trust_it_through_ssl_cert_file(tmp_path: Path) -> None:
    """``ssl.create_default_context()`` is what the vendor's websockets client uses."""
    with serving(tmp_path, "--tls") as served:
        header = f"{DEMO_USERNAME}:{DEMO_TOKEN}"
        stdlib = (
            "import base64, ssl, urllib.request\n"
            f"request = urllib.request.Request({served.agents!r}, headers={{'Authorization':"
            f" 'Basic ' + base64.b64encode({header!r}.encode()).decode()}})\n"
            "with urllib.request.urlopen(request, context=ssl.create_default_context()) as r:\n"
            "    print(r.status)\n"
        )
        with_httpx = (
            "import httpx\n"
            f"print(httpx.get({served.agents!r}, auth=({DEMO_USERNAME!r}, {DEMO_TOKEN!r}))"
            ".status_code)"
        )
        env = cache_env(tmp_path)
        for code in (stdlib, with_httpx):
            trusted = run_python(code, {**env, "SSL_CERT_FILE": str(served.ca)})
            assert trusted.stdout.strip() == "200", trusted.stderr
            untrusted = run_python(code, env)
            assert untrusted.returncode == 1
            assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr


def test_the_event_stream_is_served_over_wss_to_websockets_trusting_ssl_cert_file(
    tmp_path: Path,
) -> None:
    """The vendor's streaming client is websockets with its default context, over ``wss://``."""
    agent = "agys64KT2rumOT-zNtTKjCSF"
    with serving(tmp_path, "--tls") as served:
        change = {"agent-status": 5, "status-code-list-id": 802, "status-code-item-id": 1801}
        reply = requests.put(
            f"{served.agents}/{agent}",
            json=change,
            auth=(DEMO_USERNAME, DEMO_TOKEN),
            verify=served.ca,
            timeout=10,
        )
        assert reply.status_code == 200
        stream = served.base.replace("https://", "wss://") + (
            f"/ws/v2/reader/persistent/{DEMO_TENANT}/event-v1/all?messageId=earliest"
        )
        code = (
            "import asyncio, base64, json, websockets\n"
            "async def main():\n"
            f"    async with websockets.connect({stream!r}, extra_headers="
            f"{{'X-API-Key': {DEMO_TOKEN!r}}}) as socket:\n"
            "        message = json.loads(await asyncio.wait_for(socket.recv(), 10))\n"
            "        print(json.loads(base64.b64decode(message['payload']))"
            "['AgentStatusChange']['agentId'])\n"
            "asyncio.run(main())\n"
        )
        env = cache_env(tmp_path)
        trusted = run_python(code, {**env, "SSL_CERT_FILE": str(served.ca)})
        assert trusted.stdout.strip() == agent, trusted.stderr
        untrusted = run_python(code, env)
        assert untrusted.returncode == 1
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr


def test_the_authority_is_kept_across_starts_and_its_keys_are_private(tmp_path: Path) -> None:
    with serving(tmp_path, "--tls") as first:
        kept = first.ca.read_bytes()
    with serving(tmp_path, "--tls") as second:
        assert second.ca == first.ca
        assert second.ca.read_bytes() == kept
        assert requests.get(f"{second.base}/__admin/health", verify=second.ca).status_code == 200
    keys = sorted(first.ca.parent.glob("*key.pem"))
    assert len(keys) == 2  # the authority's and the server's
    assert {key.stat().st_mode & 0o777 for key in keys} == {0o600}


def test_with_state_the_authority_is_kept_beside_the_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    with serving(tmp_path, "--tls", "--state", str(state)) as served:
        assert served.ca == tmp_path / "state.sqlite.tls" / "ca.pem"
        assert requests.get(f"{served.base}/__admin/health", verify=served.ca).status_code == 200
    assert not (tmp_path / "cache").exists()


def test_a_ca_certificate_alone_is_a_one_line_error(tmp_path: Path) -> None:
    authority, _ = make_authority(tmp_path)
    result = failing(tmp_path, "--tls", "--tls-ca-cert", str(authority))
    assert_one_line_error(result, "--tls-ca-cert", "--tls-ca-key")


@pytest.mark.parametrize(
    "content",
    ["not a certificate\n", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"],
)
def test_a_bad_certificate_file_is_a_one_line_error(tmp_path: Path, content: str) -> None:
    _, key = make_authority(tmp_path)
    bad = tmp_path / "bad.pem"
    bad.write_text(content)
    result = failing(tmp_path, "--tls-cert", str(bad), "--tls-key", str(key))
    assert_one_line_error(result, f"--tls-cert {bad}", "not a PEM certificate")


def test_missing_files_and_a_non_ca_authority_are_one_line_errors(tmp_path: Path) -> None:
    authority, authority_key = make_authority(tmp_path)
    leaf, leaf_key = make_leaf(tmp_path, authority, authority_key)
    missing = tmp_path / "missing.pem"
    cases = [
        (["--tls-ca-cert", str(missing), "--tls-ca-key", str(authority_key)], "no such file"),
        (["--tls-ca-cert", str(leaf), "--tls-ca-key", str(leaf_key)], "not a CA certificate"),
        (["--tls-ca-cert", str(authority), "--tls-ca-key", str(leaf_key)], "does not match"),
        (["--tls-ca-cert", str(authority), "--tls-ca-key", str(authority)], "no private key"),
        (["--tls-cert", str(leaf)], "--tls-key"),
        (["--tls-cert", str(leaf), "--tls-key", str(missing)], "no such file"),
        (["--tls-cert", str(leaf), "--tls-key", str(authority_key)], "does not match"),
        (
            ["--tls-cert", str(leaf), "--tls-key", str(leaf_key), "--tls-ca-cert", str(leaf)],
            "not a CA certificate",
        ),
    ]
    for options, words in cases:
        assert_one_line_error(failing(tmp_path, *options), words)


def test_a_given_authority_signs_the_server_certificate(tmp_path: Path) -> None:
    authority, key = make_authority(tmp_path)
    options = ["--tls-ca-cert", str(authority), "--tls-ca-key", str(key)]
    with serving(tmp_path, *options) as served:  # the --tls-* options imply --tls
        assert served.ca == authority
        assert served.base.startswith("https://")
        assert requests.get(f"{served.base}/__admin/health", verify=authority).status_code == 200
    assert not (tmp_path / "cache" / "agentstatus-mock" / "tls" / "ca.pem").exists()


def test_a_given_certificate_is_served_as_it_is(tmp_path: Path) -> None:
    authority, authority_key = make_authority(tmp_path)
    leaf, leaf_key = make_leaf(tmp_path, authority, authority_key)
    with serving(tmp_path, "--tls", "--tls-cert", str(leaf), "--tls-key", str(leaf_key)) as served:
        assert not any(line.startswith(CA_LINE) for line in served.lines)
        assert any(str(leaf) in line and "your" in line for line in served.lines[:-1])
        port = int(served.base.rsplit(":", 1)[1])
        served_pem = ssl.get_server_certificate(("127.0.0.1", port))
        assert x509.load_pem_x509_certificate(served_pem.encode()) == load(leaf)
        assert requests.get(f"{served.base}/__admin/health", verify=authority).status_code == 200
    with serving(
        tmp_path,
        "--tls-cert",
        str(leaf),
        "--tls-key",
        str(leaf_key),
        "--tls-ca-cert",
        str(authority),
    ) as served:
        assert served.ca == authority
    other, _ = make_authority(tmp_path, "other")
    result = failing(
        tmp_path, "--tls-cert", str(leaf), "--tls-key", str(leaf_key), "--tls-ca-cert", str(other)
    )
    assert_one_line_error(result, "not issued by")


def test_the_server_certificate_names_the_host_and_is_for_servers_only(tmp_path: Path) -> None:
    files = prepare_tls(TLSOptions(), host="emulator.test", directory=tmp_path / "tls")
    assert files.authority == tmp_path / "tls" / "ca.pem"
    leaf, authority = x509.load_pem_x509_certificates(files.certificate.read_bytes())
    assert authority == load(files.authority)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"localhost", "emulator.test"}
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= datetime.timedelta(days=397)
    leaf.verify_directly_issued_by(authority)
    assert authority.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert authority.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert authority.subject.rfc4514_string() == "CN=agentstatus-mock local CA"
    lifetime = authority.not_valid_after_utc - authority.not_valid_before_utc
    assert lifetime >= datetime.timedelta(days=3650)
    again = prepare_tls(TLSOptions(), host="emulator.test", directory=tmp_path / "tls")
    assert again.certificate.read_bytes() == files.certificate.read_bytes()  # still valid: kept
    elsewhere = prepare_tls(TLSOptions(), host="127.0.0.2", directory=tmp_path / "tls")
    assert elsewhere.authority == files.authority
    (other_leaf, _) = x509.load_pem_x509_certificates(elsewhere.certificate.read_bytes())
    other_names = other_leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert "127.0.0.2" in {str(ip) for ip in other_names.value.get_values_for_type(x509.IPAddress)}
    assert files.certificate.read_bytes() == again.certificate.read_bytes()


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def make_authority(tmp_path: Path, name: str = "test") -> tuple[Path, Path]:
    """A certificate authority of the test's own, as a caller of --tls-ca-cert would have."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return write_pair(tmp_path, f"{name}-ca", certificate, key)


def make_leaf(tmp_path: Path, authority: Path, authority_key: Path) -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1 that the test's authority signed."""
    issuer = load(authority)
    signer = serialization.load_pem_private_key(authority_key.read_bytes(), None)
    assert isinstance(signer, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test server")]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
        .sign(signer, hashes.SHA256())
    )
    return write_pair(tmp_path, "test-server", certificate, key)


def write_pair(
    tmp_path: Path, name: str, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
