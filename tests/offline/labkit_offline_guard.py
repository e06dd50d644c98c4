"""Refuse outbound network connections in this Python process (the tests' "offline by construction" guard).

Allowed: Unix domain sockets (Jupyter kernels over ``ipc``), loopback addresses (127.0.0.0/8, ::1, ``localhost``:
torch.distributed's rendezvous, local servers). Refused, with an OSError naming the address: every other
``connect`` / ``connect_ex`` / ``sendto``, and name resolution of any other host name (so no DNS query leaves either).
Each refused attempt is appended to the file ``log`` (when given), so a test can tell that nothing even tried.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import traceback

_originals: dict[str, object] = {}
_log: str | None = None


def _is_local_host(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if host is None or host in ("localhost", "localhost.localdomain", ""):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str, target) -> OSError:
    message = f"labkit offline guard: {what} {target!r} refused (pid {os.getpid()})"
    if _log:
        stack = "".join(traceback.format_stack(limit=6)[:-2])
        with open(_log, "a") as f:
            f.write(message + "\n" + stack + "\n")
    return OSError(errno.ENETUNREACH, message)


def _check(sock, address, what="outbound connection to"):
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else address
    if not _is_local_host(host):
        raise _refuse(what, address)


def install(log: str | None = None) -> None:
    """Patch the socket module (idempotent)."""
    global _log
    _log = log
    if _originals:
        return
    _originals.update(connect=socket.socket.connect, connect_ex=socket.socket.connect_ex,
                      sendto=socket.socket.sendto, getaddrinfo=socket.getaddrinfo)

    def connect(self, address):
        _check(self, address)
        return _originals["connect"](self, address)

    def connect_ex(self, address):
        _check(self, address)
        return _originals["connect_ex"](self, address)

    def sendto(self, data, *args):
        _check(self, args[-1], "datagram to")
        return _originals["sendto"](self, data, *args)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local_host(host):
            raise _refuse("name resolution of", host)
        return _originals["getaddrinfo"](host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = connect, connect_ex, sendto
    socket.getaddrinfo = getaddrinfo


def uninstall() -> None:
    """Undo :func:`install`."""
    if not _originals:
        return
    socket.socket.connect = _originals["connect"]
    socket.socket.connect_ex = _originals["connect_ex"]
    socket.socket.sendto = _originals["sendto"]
    socket.getaddrinfo = _originals["getaddrinfo"]
    _originals.clear()
