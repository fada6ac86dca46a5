"""``python -m schemas validate``: judge a captured response against the contract.

Capture a live call with curl, keeping the headers (``-D``) and the body (``-o``)::

    curl -sS -D headers.txt -o body.json -u "$USER:$TOKEN" "$URL"
    python -m schemas validate --operation getagentsstatus --headers headers.txt body.json

With ``--headers`` the status and Content-Type come from the header dump and the required
headers are checked too; without it give ``--status`` (and ``--content-type`` if not JSON).

``--document`` names what the response is held to: ``vendor`` (the default: a live capture is
held to the vendor contract, ``vendor-openapi.yaml``, and only to it), ``api`` (the emulator's
promise, ``openapi.yaml``) or ``admin`` (the control plane). With ``vendor``, where a response
that keeps the vendor contract differs from the emulator's promise, each difference is printed
too, marked as not a failure. Exit status: 0 conforms, 1 breaks the chosen document (each
violation printed), 2 wrong usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from schemas.contract import ContractValidator
from schemas.documents import ADMIN_DOCUMENT, API_DOCUMENT, VENDOR_DOCUMENT, bundle

DOCUMENTS = {"vendor": VENDOR_DOCUMENT, "api": API_DOCUMENT, "admin": ADMIN_DOCUMENT}
SECOND_LAYER = {"vendor": API_DOCUMENT}
"""The document a response that keeps the chosen one is compared with, without failing."""
DIFFERENCE = "differs from the emulator's promise (not a failure): "


def parse_header_dump(text: str) -> tuple[int, dict[str, str]]:
    """The status and headers of the last response in a ``curl -D`` dump (after redirects)."""
    blocks = [block for block in text.replace("\r\n", "\n").split("\n\n") if block.strip()]
    if not blocks:
        raise ValueError("the header dump is empty")
    status_line, *lines = blocks[-1].strip().split("\n")
    parts = status_line.split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP status line: {status_line!r}")
    headers = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip()] = value.strip()
    return int(parts[1]), headers


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m schemas", description="Check responses against this project's contract."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="judge one captured response")
    validate.add_argument("body", type=Path, help="the response body as received")
    validate.add_argument(
        "--operation", required=True, help="operationId, e.g. getagentstatus or setagentstatus"
    )
    validate.add_argument("--headers", type=Path, help="the `curl -D` header dump of the response")
    validate.add_argument("--status", type=int, help="the HTTP status (when no --headers)")
    validate.add_argument(
        "--content-type",
        default="application/json",
        help="the Content-Type (when no --headers; default application/json)",
    )
    validate.add_argument(
        "--document",
        choices=sorted(DOCUMENTS),
        default="vendor",
        help="what the response is held to: vendor (the vendor contract, for a live capture; "
        "the default), api (the emulator's promise) or admin (the control plane)",
    )
    return parser


def validate(args: argparse.Namespace) -> int:
    validator = ContractValidator(bundle(DOCUMENTS[args.document]))
    try:
        operation = validator.operation_by_id(args.operation)
        body = args.body.read_bytes()
        if args.headers is not None:
            status, headers = parse_header_dump(args.headers.read_text(encoding="utf-8"))
            lowered = {name.lower(): value for name, value in headers.items()}
            content_type = lowered.get("content-type")
            known_headers: dict[str, str] | None = headers
        elif args.status is not None:
            status, content_type, known_headers = args.status, args.content_type, None
        else:
            print("python -m schemas: give --headers or --status", file=sys.stderr)
            return 2
    except KeyError as unknown:
        print(f"python -m schemas: {unknown.args[0]}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as error:
        print(f"python -m schemas: {error}", file=sys.stderr)
        return 2
    problems = validator.violations(
        operation, status, body, content_type=content_type, headers=known_headers
    )
    for problem in problems:
        print(problem)
    if problems:
        return 1
    for difference in differences(args, status, body, content_type, known_headers):
        print(DIFFERENCE + difference)
    print(f"{args.operation} {status}: conforms")
    return 0


def differences(
    args: argparse.Namespace,
    status: int,
    body: bytes,
    content_type: str | None,
    headers: dict[str, str] | None,
) -> list[str]:
    """How a response that keeps the chosen document breaks the emulator's promise."""
    second = SECOND_LAYER.get(args.document)
    if second is None:
        return []
    promise = ContractValidator(bundle(second))
    try:
        operation = promise.operation_by_id(args.operation)
    except KeyError as unknown:
        return [str(unknown.args[0])]
    return promise.violations(operation, status, body, content_type=content_type, headers=headers)


def main(argv: Sequence[str] | None = None) -> int:
    return validate(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
