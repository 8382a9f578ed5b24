"""Which local port the studio listens on: the one asked for, else the next free one, said plainly.

Standard library only: ``launch.py`` uses it before anything is installed.
"""

from __future__ import annotations

import socket

from .i18n import t

SEARCH = 100  # how many ports after the preferred one are tried before the system picks one


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def port_is_free(host: str, port: int) -> bool:
    """Nothing answers on it and we may bind it (both: Windows lets a second program bind a port
    that another listens on for all addresses)."""
    target = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host.strip("[]")
    with socket.socket(_family(target), socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        if probe.connect_ex((target, port)) == 0:
            return False
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
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
