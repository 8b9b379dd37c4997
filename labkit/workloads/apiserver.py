"""The control plane's host-network programs of a lab, in one small process (stdlib only).

- The API server stand-in: listens on the control-plane node's IP, port 6443 (what the
  ``kubernetes`` service's endpoint points at), and answers every request with a small
  JSON body, keeping the connection open (HTTP/1.1 keep-alive). Plain HTTP, not TLS.
- Per node, two clients of it, as a kind node has: the kubelet (renews its node lease
  every LEASE_S seconds) and the Cilium agent (its watch, polled every WATCH_S seconds).
  Each keeps one connection open from the node's own IP, so BPF masquerade tracks
  host-originated traffic (NeedsCT=1 entries to port 6443 in `bpf nat list`), as on a
  real node. A client reconnects when its connection breaks (e.g. after a CT flush).
- Per node, the agent's Hubble server port (4244), the backend of the hubble-peer service.

    python3 apiserver.py --api NETNS:IP:PORT --node NETNS:NAME ... --peer NETNS:IP:PORT ...
"""

from __future__ import annotations

import argparse
import errno
import os
import random
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns_sockets

LEASE_S = 2.0  # kubelet: 10 s in Kubernetes; shorter so a lab shows it within a few seconds
WATCH_S = 5.0
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Client:
    """One keep-alive HTTP client in a node's namespace."""

    def __init__(self, netns: str, node: str, who: str, api: tuple[str, int], every: float) -> None:
        self.netns, self.node, self.who, self.api, self.every = netns, node, who, api, every
        self.sock: socket.socket | None = None
        self.connected = False
        self.due = time.monotonic() + random.uniform(0, every)
        self.buf = b""

    def request(self) -> bytes:
        if self.who == "kubelet":
            line = f"PUT /apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.node} HTTP/1.1"
        else:
            line = f"GET /api/v1/namespaces/kube-system/pods?watch=1&fieldSelector=spec.nodeName={self.node} HTTP/1.1"
        agent = "kubelet/v1.32.2" if self.who == "kubelet" else "cilium-agent/1.17.6"
        return f"{line}\r\nHost: {self.api[0]}:{self.api[1]}\r\nUser-Agent: {agent}\r\n\r\n".encode()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--api", required=True, help="NETNS:IP:PORT of the API server")
    ap.add_argument("--node", action="append", default=[], help="NETNS:NAME of a node with kubelet and agent")
    ap.add_argument("--peer", action="append", default=[], help="NETNS:IP:PORT of an agent's Hubble server")
    ap.add_argument("--ready-fd", type=int, default=-1)
    a = ap.parse_args()
    sel = selectors.DefaultSelector()
    ns, ip, port = a.api.rsplit(":", 2)
    api = (ip, int(port))
    for spec in [a.api, *a.peer]:
        p_ns, p_ip, p_port = spec.rsplit(":", 2)
        sel.register(netns_sockets.listener(p_ns, p_ip, int(p_port)), selectors.EVENT_READ, ("listen", None))
    clients = []
    for spec in a.node:
        n_ns, name = spec.rsplit(":", 1)
        clients += [Client(n_ns, name, "kubelet", api, LEASE_S), Client(n_ns, name, "agent", api, WATCH_S)]
    if a.ready_fd >= 0:
        os.write(a.ready_fd, b"ready\n")
        os.close(a.ready_fd)
    while True:
        now = time.monotonic()
        for c in clients:
            if now >= c.due:
                c.due = now + c.every
                tick(sel, c)
        for key, mask in sel.select(timeout=0.25):
            kind, obj = key.data
            if kind == "listen":
                try:
                    conn, _ = key.fileobj.accept()  # type: ignore[union-attr]
                except OSError:
                    continue
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ, ("serve", None))
            elif kind == "serve":
                serve(sel, key.fileobj)  # type: ignore[arg-type]
            else:
                client_event(sel, obj, mask)


def serve(sel: selectors.BaseSelector, conn: socket.socket) -> None:
    """Answer each request read (keep-alive); close on EOF."""
    try:
        data = conn.recv(65536)
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        data = b""
    if not data:
        sel.unregister(conn)
        conn.close()
        return
    for _ in range(data.count(b"\r\n\r\n")):
        try:
            conn.send(RESPONSE)
        except OSError:
            break


def drop(sel: selectors.BaseSelector, c: Client) -> None:
    if c.sock is not None:
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
    c.sock, c.connected, c.buf = None, False, b""


def tick(sel: selectors.BaseSelector, c: Client) -> None:
    """Time for the client's next request: connect first if needed."""
    if c.sock is None:
        try:
            c.sock = netns_sockets.stream(c.netns)
        except OSError:
            return
        err = c.sock.connect_ex(c.api)
        if err not in (0, errno.EINPROGRESS):
            drop(sel, c)
            return
        sel.register(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, ("client", c))
        return
    if c.connected:
        try:
            c.sock.send(c.request())
        except OSError:
            drop(sel, c)


def client_event(sel: selectors.BaseSelector, c: Client, mask: int) -> None:
    assert c.sock is not None
    if not c.connected and mask & selectors.EVENT_WRITE:
        if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
            drop(sel, c)
            return
        c.connected = True
        sel.modify(c.sock, selectors.EVENT_READ, ("client", c))
        try:
            c.sock.send(c.request())
        except OSError:
            drop(sel, c)
        return
    try:
        data = c.sock.recv(65536)
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        data = b""
    if not data:
        drop(sel, c)


if __name__ == "__main__":
    main()
