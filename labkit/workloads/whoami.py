"""A small HTTP server that answers like traefik/whoami (the blog's webpod image).

Run as a script inside a pod's network namespace (stdlib only: it starts fast and small):
    python3 whoami.py --name webpod-... --ip 10.244.1.182 --port 80 [--ready-fd N]
GET / answers with Hostname, IP lines, RemoteAddr, then the request line and headers,
as whoami does. It also echoes UDP datagrams on the same port (for UDP service labs).
"""

from __future__ import annotations

import argparse
import os
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--ip", action="append", default=[])
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--ready-fd", type=int, default=-1)
    args = ap.parse_args()
    ips = ["127.0.0.1", *args.ip]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "whoami"

        def do_GET(self) -> None:
            lines = [
                f"Hostname: {args.name}",
                *(f"IP: {ip}" for ip in ips),
                f"RemoteAddr: {self.client_address[0]}:{self.client_address[1]}",
                f"{self.command} {self.path} {self.request_version}",
            ]
            host = self.headers.get("Host")
            if host is not None:
                lines.append(f"Host: {host}")
            # Go's Request.Write order: Host, User-Agent, then the other headers sorted.
            ua = self.headers.get("User-Agent")
            if ua is not None:
                lines.append(f"User-Agent: {ua}")
            lines += [f"{k}: {v}" for k, v in sorted(self.headers.items()) if k.lower() not in ("host", "user-agent")]
            body = ("\r\n".join(lines) + "\r\n\r\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *a) -> None:
            pass

    ThreadingHTTPServer.allow_reuse_address = True
    http = ThreadingHTTPServer(("0.0.0.0", args.port), Handler)

    class Udp(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data, sock = self.request
            reply = f"Hostname: {args.name}\nRemoteAddr: {self.client_address[0]}:{self.client_address[1]}\n"
            sock.sendto(reply.encode() + data, self.client_address)

    udp = socketserver.ThreadingUDPServer(("0.0.0.0", args.port), Udp)
    threading.Thread(target=udp.serve_forever, daemon=True).start()
    if args.ready_fd >= 0:
        os.write(args.ready_fd, b"ready\n")
        os.close(args.ready_fd)
    http.serve_forever()


if __name__ == "__main__":
    socket.setdefaulttimeout(None)
    main()
