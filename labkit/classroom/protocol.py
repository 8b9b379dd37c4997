"""The lab broker's wire format, shared by the broker (root) and its clients (students).

One Unix stream socket; every message is a 4-byte big-endian length and a body. A request
(client -> broker) is JSON only, so the broker never unpickles what a student sends; file
descriptors ride along with SCM_RIGHTS (a command's stdio, capture sockets coming back).
A reply (broker -> client) is a pickle: the client trusts the broker (root, at a root-owned
path) and gets DataFrames, dataclasses and LabErrors back exactly as the embedded backend
returns them. The broker knows who asks from the socket's SO_PEERCRED, never from the
request.
"""

from __future__ import annotations

import array
import json
import os
import pickle
import socket
import struct
from pathlib import Path
from typing import Any

CLASSROOM_ROOT = Path(os.environ.get("LABKIT_CLASSROOM_RUN", "/run/labkit-classroom"))
SOCKET_NAME = "broker.sock"
MAX_REQUEST = 4 << 20  # a request (manifests included) is at most 4 MiB
MAX_FDS = 16  # descriptors in one message
_LEN = struct.Struct(">I")


def socket_path() -> Path:
    """Where the broker listens ($LABKIT_BROKER overrides, for tests)."""
    return Path(os.environ.get("LABKIT_BROKER") or CLASSROOM_ROOT / SOCKET_NAME)


class ProtocolError(Exception):
    """The peer sent something that is not a message of this protocol."""


def _send(sock: socket.socket, body: bytes, fds: list[int] | tuple[int, ...] = ()) -> None:
    data = _LEN.pack(len(body)) + body
    if fds:
        sock.sendmsg([data[:1]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        data = data[1:]
    sock.sendall(data)


def _recv_exact(sock: socket.socket, n: int, fds: list[int]) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk, anc, _flags, _addr = sock.recvmsg(n - len(buf), socket.CMSG_SPACE(MAX_FDS * 4))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                got = array.array("i")
                got.frombytes(data[: len(data) - (len(data) % got.itemsize)])
                fds.extend(got)
        if not chunk:
            return None if not buf else bytes(buf)
        buf += chunk
    return bytes(buf)


def _recv(sock: socket.socket, limit: int) -> tuple[bytes, list[int]] | None:
    fds: list[int] = []
    head = _recv_exact(sock, _LEN.size, fds)
    if head is None:
        return None
    if len(head) < _LEN.size:
        raise ProtocolError("truncated message")
    (n,) = _LEN.unpack(head)
    if n > limit:
        for fd in fds:
            os.close(fd)
        raise ProtocolError(f"message of {n} bytes is larger than {limit}")
    body = _recv_exact(sock, n, fds) if n else b""
    if body is None or len(body) < n:
        raise ProtocolError("truncated message")
    return body, fds


# requests: JSON --------------------------------------------------------------------------
def send_request(sock: socket.socket, request: dict[str, Any], fds: list[int] | tuple[int, ...] = ()) -> None:
    _send(sock, json.dumps(request).encode(), fds)


def recv_request(sock: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    got = _recv(sock, MAX_REQUEST)
    if got is None:
        return None
    body, fds = got
    try:
        request = json.loads(body)
    except ValueError:
        raise ProtocolError("a request must be JSON") from None
    if not isinstance(request, dict):
        raise ProtocolError("a request must be a JSON object")
    return request, fds


# replies: pickles ------------------------------------------------------------------------
def send_reply(sock: socket.socket, reply: Any, fds: list[int] | tuple[int, ...] = ()) -> None:
    _send(sock, pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL), fds)


def recv_reply(sock: socket.socket) -> tuple[Any, list[int]] | None:
    got = _recv(sock, 1 << 31)
    if got is None:
        return None
    body, fds = got
    return pickle.loads(body), fds


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end (SO_PEERCRED: the kernel says, not the peer)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def peer_pid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[0]
