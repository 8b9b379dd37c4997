"""Run a command in a student's lab through the broker, as if it ran here.

``python -m labkit.classroom.relay --lab LAB TARGET -- ARGV...``: hands this process's
stdin, stdout and stderr to the broker (SCM_RIGHTS), which runs ARGV in TARGET as the
student; exits with ARGV's status. Ending this process (Ctrl-C, a timeout's kill) closes
the connection and the broker ends the command. So ``BrokerBackend.popen`` is an ordinary
``subprocess.Popen`` of this relay, and ``labkit shell`` gets a terminal in the lab.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

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
    request = {
        "op": "spawn",
        "lab": lab,
        "target": target,
        "argv": command,
        "env": env,
        "cwd": os.getcwd() if os.path.isdir(os.getcwd()) else "",
        "tty": os.isatty(0),
    }
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(protocol.socket_path()))
    except OSError as e:
        print(f"labkit: error: cannot reach the lab broker: {e.strerror}", file=sys.stderr)
        return 1
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda n, _f: os._exit(128 + n))  # closing the socket ends the command
    if not os.isatty(0):
        signal.signal(signal.SIGINT, lambda n, _f: os._exit(128 + n))
    else:  # a terminal's Ctrl-C is passed on to the command (it runs in a session of its own)
        signal.signal(signal.SIGINT, lambda _n, _f: s.send(b"i"))
    protocol.send_request(s, request, [0, 1, 2])
    while True:
        got = protocol.recv_reply(s)
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


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
