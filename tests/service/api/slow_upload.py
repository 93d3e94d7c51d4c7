"""A multipart upload sent over a raw socket in two halves, to hold a request open on purpose.

The service admits an analysis request when its head arrives and reads the body inside the
route, so an upload whose second half is held back keeps its slot for as long as the test
wants: a real HTTP client that is merely slow, no mock in the service.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

BOUNDARY = "slow-upload-boundary-41d8"
READ_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RawResponse:
    """Status, lower-case header names and the body of one HTTP/1.1 answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def multipart_body(audio: bytes, filename: str = "clip.wav") -> bytes:
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + audio + f"\r\n--{BOUNDARY}--\r\n".encode()


class SlowUpload:
    """``POST path`` with ``audio``: :meth:`start` sends the head and half of the body,
    :meth:`finish` the rest, then reads the answer (the connection closes after it)."""

    def __init__(self, base_url: str, path: str, audio: bytes) -> None:
        parts = urlsplit(base_url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.path = path
        self.body = multipart_body(audio)
        self.sock: socket.socket | None = None

    def start(self) -> SlowUpload:
        self.sock = socket.create_connection(self.address, timeout=READ_TIMEOUT_S)
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.address[0]}\r\nConnection: close\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {len(self.body)}\r\n\r\n"
        ).encode()
        self.sock.sendall(head + self.body[: len(self.body) // 2])
        return self

    def finish(self) -> RawResponse:
        assert self.sock is not None, "start() first"
        self.sock.sendall(self.body[len(self.body) // 2 :])
        return self.answer()

    def answer(self) -> RawResponse:
        """Read until the server closes the connection (without sending the rest)."""
        assert self.sock is not None, "start() first"
        chunks = []
        with self.sock:
            while chunk := self.sock.recv(65536):
                chunks.append(chunk)
        return parse_response(b"".join(chunks))


def parse_response(raw: bytes) -> RawResponse:
    """Split an HTTP/1.1 answer with a ``Content-Length`` body (what the service sends)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(int(status_line.split()[1]), headers, body)
