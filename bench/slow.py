"""Slow clients: raw connections that trickle a request's headers, one line at a time, and never
finish them, while the normal load runs (a slowloris in miniature).

One thread keeps them all: each connection sends a request line and ``Host``, then one more
header line every ``interval`` seconds, never the blank line that ends the headers. What the
server did to them is counted: connections it closed, and any that got an answer (a 408, say).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any

CONNECT_TIMEOUT_SECONDS = 2.0


@dataclass
class SlowFigures:
    connections: int
    connected: int = 0
    closed_by_server: int = 0
    answered: int = 0
    header_lines_sent: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SlowClients:
    """``count`` connections to ``host:port`` trickling the headers of ``GET path``."""

    def __init__(
        self, host: str, port: int, path: str, count: int = 50, interval: float = 1.0
    ) -> None:
        self.host, self.port, self.path, self.interval = host, port, path, interval
        self.figures = SlowFigures(connections=count)
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, name="slow-clients", daemon=True)
        self._begun = 0.0

    def __enter__(self) -> SlowFigures:
        self._begun = time.monotonic()
        opening = f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n".encode()
        for _ in range(self.figures.connections):
            try:
                connection = socket.create_connection(
                    (self.host, self.port), timeout=CONNECT_TIMEOUT_SECONDS
                )
                connection.sendall(opening)
            except OSError:
                continue
            connection.setblocking(False)
            self._sockets.append(connection)
        self.figures.connected = len(self._sockets)
        self._thread.start()
        return self.figures

    def _trickle(self) -> None:
        line = 0
        while not self._stop.wait(self.interval):
            line += 1
            for connection in list(self._sockets):
                if self._still_open(connection):
                    try:
                        connection.send(f"X-Trickle-{line}: {'a' * 8}\r\n".encode())
                        self.figures.header_lines_sent += 1
                        continue
                    except OSError:
                        pass
                self.figures.closed_by_server += 1
                self._sockets.remove(connection)
                connection.close()

    def _still_open(self, connection: socket.socket) -> bool:
        """False once the server closed it; an answer (any bytes) is counted, then it's closed."""
        try:
            data = connection.recv(4096)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if data:
            self.figures.answered += 1
        return False

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)
        for connection in self._sockets:
            if not self._still_open(connection):
                self.figures.closed_by_server += 1
            connection.close()
        self._sockets.clear()
        self.figures.seconds = round(time.monotonic() - self._begun, 1)
