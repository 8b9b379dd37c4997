"""Helpers shared by the eBPF datapath integration tests (tests/test_datapath_*.py)."""

from __future__ import annotations

import sys

ARP_PROBE = r"""
import socket, struct, sys, time
ifname, sip, tip = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind((ifname, 0))
mac = s.getsockname()[4]
frame = b"\xff" * 6 + mac + b"\x08\x06" + struct.pack(">HHBBH", 1, 0x0800, 6, 4, 1) + mac + socket.inet_aton(sip) \
    + b"\0" * 6 + socket.inet_aton(tip)
s.send(frame)
s.settimeout(2)
end = time.time() + 2
while time.time() < end:
    try:
        data = s.recv(2048)
    except socket.timeout:
        break
    if data[12:14] == b"\x08\x06" and struct.unpack(">H", data[20:22])[0] == 2 and data[28:32] == socket.inet_aton(tip):
        print(":".join(f"{b:02x}" for b in data[22:28]))
        sys.exit(0)
sys.exit(1)
"""

HTTP_MANY = r"""
import sys, urllib.request, collections
url, n = sys.argv[1], int(sys.argv[2])
c = collections.Counter()
for _ in range(n):
    body = urllib.request.urlopen(url, timeout=5).read().decode()
    c[body.splitlines()[0]] += 1
for k, v in c.items():
    print(v, k)
"""

PEERNAME = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
print("%s:%d" % s.getpeername())
"""

UDP_ECHO = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(b"hello-udp", (sys.argv[1], int(sys.argv[2])))
data, addr = s.recvfrom(4096)
print("%s:%d" % addr)
print(data.decode())
"""


def py(script: str, *args: str) -> list[str]:
    return [sys.executable, "-c", script, *args]
