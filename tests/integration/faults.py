"""Fault injectors the tests own: a free port, a TCP proxy in front of PostgreSQL, a tiny tmpfs.

None of them touches the machine's own services: the proxy only relays to 127.0.0.1:5432, and stopping it
makes the database unreachable for the processes pointed at the proxy alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TcpProxy:
    """Relays 127.0.0.1:<port> to an upstream address; ``stop()`` closes the listener and every open connection."""

    def __init__(self, upstream: tuple[str, int], port: int | None = None) -> None:
        self.upstream = upstream
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # stopped meanwhile
                    client.close()
                    server.close()
                    return
                self._sockets.update((client, server))
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def small_tmpfs(path: Path, *, size_kb: int, inodes: int | None = None) -> Iterator[Path]:
    """Mount a tmpfs of ``size_kb`` (and ``inodes``) at ``path``: a filesystem the test can really fill up.

    Needs root (CI and these machines run as root); elsewhere the test is skipped, saying why.
    """
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("a full filesystem is made with `mount -t tmpfs`, which needs root")
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size_kb}k,mode=0755" + (f",nr_inodes={inodes}" if inodes else "")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "pneumoweb-test", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}): no way to make a full filesystem")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill_up(directory: Path, *, data: bool = True, inodes: bool = False, keep_inodes: int = 0) -> list[Path]:
    """Fill the filesystem of ``directory``: its bytes, and/or its inodes but ``keep_inodes``. Returns the fillers."""
    fillers: list[Path] = []
    if data:
        big = directory / "filler-bytes"
        with contextlib.suppress(OSError), big.open("wb", buffering=0) as handle:
            while True:
                handle.write(b"\0" * 65536)
        fillers.append(big)
    inode_fillers: list[Path] = []
    while inodes:
        candidate = directory / f"filler-inode-{len(inode_fillers)}"
        try:
            candidate.touch(exist_ok=False)
        except OSError:
            break
        inode_fillers.append(candidate)
    for _ in range(min(keep_inodes, len(inode_fillers))):
        inode_fillers.pop().unlink()
    return fillers + inode_fillers
