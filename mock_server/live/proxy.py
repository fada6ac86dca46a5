"""``agentstatus-mock proxy``: forward API calls to a live service and record every exchange.

Point a client at the proxy instead of the platform: each request under ``/api/`` goes to the
upstream with ``requests`` (the client's own Authorization header included, nothing added),
and the upstream's answer comes back unchanged (status, body bytes, headers except the
hop-by-hop ones). Each exchange is appended to the recording (see ``mock_server.live.recording``),
masked, for ``agentstatus-mock diff`` and ``validate-recording`` to read later.

The proxy holds no credentials of its own. It listens on loopback only unless told otherwise,
since it relays whoever calls it to the tenant.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

from client.errors import describe_failure
from mock_server.http.rendering import problem_response
from mock_server.live.capture import output_problem, url_problem
from mock_server.live.recording import (
    MAX_LINE_BYTES,
    RecordingWriter,
    masked,
    os_reason,
    recorded_message,
    scrub,
    secrets_of,
)
from mock_server.live.upstream import ENV, NOT_FORWARDED, TIMEOUT_SECONDS, api_url
from mock_server.serving.threaded import (
    ProblemRequestHandler,
    add_listen_options,
    port_in_use,
    refuses_remote,
)
from mock_server.testdouble.journal import header_value
from schemas.wire import API_ROOT, UnknownPlatform

COMMAND = "agentstatus-mock proxy"
METHODS = ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"]
DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
}


class UpstreamError(Exception):
    """The upstream URL is unusable; the message says why."""


def upstream_root(url: str) -> str:
    """``https://vcc-na12.8x8.com`` from the platform root or the API root (``.../api/v1``):
    the proxy forwards whole paths, ``/api/v1/...`` included."""
    problem = url_problem(url)
    if problem is not None:
        raise UpstreamError(f"the upstream URL {problem}")
    parts = urlsplit(url.strip())
    path = (parts.path.rstrip("/") + "/").split(API_ROOT, 1)[0].rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _forwarded(headers: Any) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers if name.lower() not in NOT_FORWARDED]


def _decoded(raw: bytes, headers: list[tuple[str, str]]) -> bytes:
    """The body as the client will read it, for the recording (which keeps it readable)."""
    encoding = header_value(headers, "content-encoding") or ""
    decoder = DECODERS.get(encoding.lower().strip())
    if decoder is None:
        return raw
    try:
        return decoder(raw)
    except (OSError, zlib.error):
        return raw


def _bad_gateway(url: str, error: requests.RequestException, secrets: list[str]) -> Response:
    """Problem JSON saying what went wrong in the client's words (``client.errors``), scrubbed
    of the caller's credentials."""
    detail = f"The upstream did not answer {request.method} {request.path}: "
    detail += describe_failure(error, url) + "."
    return problem_response(502, scrub(detail, secrets))


def _report(message: str) -> None:
    print(f"{COMMAND}: {message}", file=sys.stderr, flush=True)


def _http_error(error: HTTPException) -> Response:
    """Werkzeug's refusals (a method no route takes, an unreadable request) as Problem JSON:
    the emulator's renderer needs an emulator's state, which the proxy has not."""
    response = problem_response(error.code or 500, error.description or "The request failed.")
    allowed = dict(error.get_headers()).get("Allow")
    if allowed:
        response.headers["Allow"] = allowed
    return response


def _unexpected_error(error: Exception) -> Response:
    """A bug in the proxy: logged, and still answered as Problem JSON, never HTML."""
    current_app.logger.exception("unexpected error on %s %s", request.method, request.path)
    return problem_response(500, f"The proxy failed unexpectedly: {type(error).__name__}.")


def create_proxy_app(upstream: str, record: Path) -> Flask:
    """A recording proxy to ``upstream`` (platform or API root URL), appending to ``record``;
    a write that fails stops the recording (one line on stderr), not the relaying."""
    root = upstream_root(upstream)
    writer = RecordingWriter(record, _report)
    app = Flask(__name__)
    # A body no recording line could hold is no Agent Status request either: 413, unread.
    app.config["MAX_CONTENT_LENGTH"] = MAX_LINE_BYTES
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)

    @app.route("/<path:_>", methods=METHODS)
    @app.route("/", methods=METHODS, defaults={"_": ""})
    def forward(_: str) -> Response:
        if not request.path.startswith(API_ROOT):
            return _not_proxied()
        started = time.perf_counter()
        sent_headers = list(request.headers.items())
        secrets = secrets_of(sent_headers)
        body = request.get_data()
        query = request.query_string.decode("latin-1")
        exchange: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "method": request.method,
            "path": request.path,
            "query": query,
            "request": recorded_message(masked(sent_headers, secrets), body),
        }
        url = root + request.path + (f"?{query}" if query else "")
        try:
            status, headers, raw = _send(request.method, url, _forwarded(sent_headers), body)
        except requests.RequestException as error:
            response = _bad_gateway(url, error, secrets)
            exchange.update(status=None, response=None, error=response.get_json()["detail"])
        else:
            response = Response(raw, status=status, headers=headers)
            if header_value(headers, "content-type") is None:
                del response.headers["Content-Type"]
            exchange.update(
                status=status,
                response=recorded_message(masked(headers, secrets), _decoded(raw, headers)),
            )
        exchange["duration-ms"] = round((time.perf_counter() - started) * 1000, 3)
        writer.append(scrub(exchange, secrets))
        return response

    return app


def _send(
    method: str, url: str, headers: list[tuple[str, str]], body: bytes
) -> tuple[int, list[tuple[str, str]], bytes]:
    """One upstream call carrying only the client's headers (no requests defaults added);
    the body is read raw, so the client gets the very bytes the upstream sent."""
    with requests.Session() as session:
        session.trust_env = False  # never the operator's .netrc credentials or proxies
        session.headers.clear()
        with session.request(
            method,
            url,
            headers=dict(headers),
            data=body or None,
            timeout=TIMEOUT_SECONDS,
            allow_redirects=False,
            stream=True,
        ) as answer:
            raw: bytes = answer.raw.read(decode_content=False)
            return answer.status_code, _forwarded(answer.raw.headers.items()), raw


def _not_proxied() -> Response:
    detail = f"The recording proxy forwards only paths under {API_ROOT}, not {request.path}."
    return problem_response(404, detail)


def run_proxy(args: argparse.Namespace) -> int:
    """The ``proxy`` command: serve until Ctrl-C."""
    if refuses_remote(
        COMMAND,
        args.host,
        unlocked=args.allow_remote,
        reason=": the proxy relays callers to the tenant. Add --allow-remote if that is meant.",
    ):
        return 2
    if not args.base_url and not args.platform:
        print(
            f"{COMMAND}: give --upstream or --platform (or {ENV['base_url']})",
            file=sys.stderr,
        )
        return 2
    record = Path(args.record)
    try:
        upstream = upstream_root(api_url(args))
    except (UnknownPlatform, UpstreamError) as error:
        print(f"{COMMAND}: {error}", file=sys.stderr)
        return 2
    problem = output_problem(record, "--record")
    if problem is None and port_in_use(args.host, args.port):
        problem = f"port {args.port} is in use on {args.host}: choose another, or 0 for a free one."
    if problem is not None:
        print(f"{COMMAND}: {problem}", file=sys.stderr)
        return 2
    try:
        app = create_proxy_app(upstream, record)
    except OSError as error:  # the file itself, say read-only
        print(f"{COMMAND}: --record {record}: cannot write: {os_reason(error)}.", file=sys.stderr)
        return 2
    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=ProblemRequestHandler
    )
    print(f"Recording proxy on http://{args.host}:{server.port} -> {upstream}", flush=True)
    print(f"Recording to {args.record} (credentials masked). Stop with Ctrl-C.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def add_proxy_command(commands: Any) -> None:
    """Register ``proxy`` on the CLI's subcommands."""
    parser = commands.add_parser(
        "proxy", help="forward /api/ calls to a live service and record each exchange"
    )
    parser.add_argument(
        "--upstream",
        dest="base_url",
        metavar="URL",
        default=os.environ.get(ENV["base_url"]),
        help="e.g. https://vcc-na12.8x8.com or an emulator's base URL; the API root "
        f"(.../api/v1) works too (or {ENV['base_url']})",
    )
    parser.add_argument(
        "--platform",
        default=os.environ.get(ENV["platform"]),
        help=f"instead of --upstream, e.g. NA12 (or {ENV['platform']})",
    )
    add_listen_options(parser, port=8081)
    parser.add_argument(
        "--record", required=True, metavar="FILE", help="JSON Lines file to append exchanges to"
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (anyone who reaches it reaches your tenant)",
    )
    parser.set_defaults(handler=run_proxy)
