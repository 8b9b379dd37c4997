"""Run a command in a student's lab through the broker, as if it ran here.

``python -m labkit.classroom.relay --lab LAB TARGET -- ARGV...``: hands this process's
stdin, stdout and stderr to the broker (SCM_RIGHTS), which runs ARGV in TARGET as the
student; exits with ARGV's status. On a terminal the command gets a pty of its own, whose
master comes back here: this terminal goes raw and bytes are copied both ways (as ssh
does). Ending this process (Ctrl-C, a timeout's kill) closes the connection and the broker
ends the command. So ``BrokerBackend.popen`` is an ordinary
``subprocess.Popen`` of this relay, and ``labkit shell`` gets a terminal in the lab.
"""

from __future__ import annotations

import fcntl
import os
import selectors
import signal
import socket
import struct
import sys
import termios
import tty

from . import protocol


def main(argv: list[str]) -> int:
    lab = "default"
    if argv[:1] == ["--lab"]:
        lab, argv = argv[1], argv[2:]
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m labkit.classroom.relay [--lab LAB] TARGET -- COMMAND...", file=sys.stderr)
        return 2
    target, command = argv[0], argv[2:]
    env = dict(os.environ)  # the command runs as the student: their environment is theirs
    terminal = os.isatty(0) and os.isatty(1)
    rows, cols = _size(1) if terminal else (0, 0)
    request = {
        "op": "spawn",
        "lab": lab,
        "target": target,
        "argv": command,
        "env": env,
        "cwd": os.getcwd() if os.path.isdir(os.getcwd()) else "",
        "tty": terminal,
        "rows": rows,
        "cols": cols,
    }
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(protocol.socket_path()))
    except OSError as e:
        print(f"labkit: error: cannot reach the lab broker: {e.strerror}", file=sys.stderr)
        return 1
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda n, _f: os._exit(128 + n))  # closing the socket ends the command
    if not terminal:
        signal.signal(signal.SIGINT, lambda n, _f: os._exit(128 + n))
    else:  # the terminal is raw: Ctrl-C reaches the command through its own pty
        signal.signal(signal.SIGINT, lambda _n, _f: s.send(b"i"))
    protocol.send_request(s, request, [0, 1, 2])
    while True:
        got = protocol.recv_reply(s)
        if got is not None and got[1]:
            return _terminal(s, got[1][0])
        if got is None:
            print("labkit: error: the lab broker went away", file=sys.stderr)
            return 1
        reply, _ = got
        if "error" in reply:
            print(f"labkit: error: {reply['error']}", file=sys.stderr)
            return int(getattr(reply["error"], "exit_code", 1))
        if "exit" in reply:
            code = int(reply["exit"])
            return code if code >= 0 else 128 - code


def _size(fd: int) -> tuple[int, int]:
    try:
        rows, cols, _x, _y = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
        return rows, cols
    except OSError:
        return 24, 80


def _drain(master: int) -> None:
    """What the command wrote just before it exited."""
    sel = selectors.DefaultSelector()
    sel.register(master, selectors.EVENT_READ)
    while sel.select(timeout=0.2):
        try:
            data = os.read(master, 65536)
        except OSError:
            return
        if not data:
            return
        os.write(1, data)


def _terminal(s: socket.socket, master: int) -> int:
    """Copy between this terminal (raw, like ssh) and the command's pty until it exits."""
    saved = termios.tcgetattr(0)
    signal.signal(
        signal.SIGWINCH,
        lambda *_: fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", *_size(1), 0, 0)),
    )
    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ)
    sel.register(master, selectors.EVENT_READ)
    sel.register(s, selectors.EVENT_READ)
    code = 1
    try:
        tty.setraw(0)
        while True:
            for key, _ in sel.select():
                if key.fd == 0:
                    data = os.read(0, 4096)
                    if not data:
                        sel.unregister(0)
                        continue
                    os.write(master, data)
                elif key.fd == master:
                    try:
                        data = os.read(master, 65536)
                    except OSError:  # EIO: the command's side of the pty closed
                        data = b""
                    if not data:
                        sel.unregister(master)
                        continue
                    os.write(1, data)
                else:
                    got = protocol.recv_reply(s)
                    if got is None:
                        return code
                    reply = got[0]
                    if "exit" in reply:
                        _drain(master)
                        c = int(reply["exit"])
                        return c if c >= 0 else 128 - c
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)
        os.close(master)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
