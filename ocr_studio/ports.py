"""Which local port the studio listens on: the one asked for, else the next free one, said plainly.

The server binds the port itself (``listen``) and keeps the socket it chose with, so no other
program can take the port between the choice and the start. Sockets are made the way a server
that restarts needs them: ``SO_REUSEADDR`` on POSIX, so the TIME_WAIT connections a killed
studio leaves behind do not push the next start to another port (two listeners still cannot
share a port: that would take ``SO_REUSEPORT``, never set here); on Windows, where
``SO_REUSEADDR`` would let another program bind the same port, ``SO_EXCLUSIVEADDRUSE``.

Standard library only: ``launch.py`` uses it before anything is installed.
"""

from __future__ import annotations

import os
import socket

from .i18n import t

SEARCH = 100  # how many ports after the preferred one are tried before the system picks one


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def server_socket(host: str) -> socket.socket:
    """An unbound TCP socket for a listener on ``host``, with the reuse rules above."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        if os.name == "nt":
            sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_EXCLUSIVEADDRUSE", -5), 1)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    except OSError:
        sock.close()
        raise
    return sock


def bind(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port`` (0: one the system hands out); ``OSError`` if taken."""
    sock = server_socket(host)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def listen(host: str, preferred: int) -> socket.socket:
    """A listening socket on ``preferred`` when free, else on the next free port after it, else on
    one the system hands out. The caller serves on this very socket: the port it reports is one
    it holds."""
    if preferred:
        for port in range(preferred, min(preferred + SEARCH, 65536)):
            if _answers(host, port):
                continue
            try:
                return bind(host, port)
            except OSError:
                continue
    return bind(host, 0)


def _answers(host: str, port: int) -> bool:
    """Something listens there (Windows lets a second program bind a port that another listens
    on for all addresses, so binding alone does not tell)."""
    target = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host.strip("[]")
    with socket.socket(_family(target), socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((target, port)) == 0


def port_is_free(host: str, port: int) -> bool:
    """Nothing answers on it and we may bind it (both: Windows lets a second program bind a port
    that another listens on for all addresses)."""
    if _answers(host, port):
        return False
    with server_socket(host) as sock:
        try:
            sock.bind((host.strip("[]"), port))
        except OSError:
            return False
    return True


def free_port(host: str, preferred: int) -> int:
    """``preferred`` when free, else the next free port after it, else one the system hands out."""
    if preferred:
        for port in range(preferred, min(preferred + SEARCH, 65536)):
            if port_is_free(host, port):
                return port
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host.strip("[]"), 0))
        return int(sock.getsockname()[1])


def busy_message(preferred: int, chosen: int) -> str:
    """The sentence the launcher and ``serve`` print, in the current language."""
    return t("launcher.ports.busy", preferred=preferred, chosen=chosen)
