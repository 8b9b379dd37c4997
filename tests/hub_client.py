"""A student's session through JupyterHub's REST API: start their server, run a notebook in
a kernel of that server (the Jupyter server's REST API and kernel websocket), as a browser
would, with no browser."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any


class Hub:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url.rstrip("/"), token

    def api(self, method: str, path: str, body: Any = None, token: str | None = None, timeout: float = 60) -> Any:
        req = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {token or self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read().decode()
        return json.loads(text) if text.strip() else None

    def user_token(self, user: str) -> str:
        return self.api("POST", f"/hub/api/users/{user}/tokens", {"note": "labkit test", "expires_in": 3600})["token"]

    def start_server(self, user: str, timeout: float = 120) -> None:
        try:
            self.api("POST", f"/hub/api/users/{user}/server")
        except urllib.error.HTTPError as e:
            if e.code != 400:  # 400: already running
                raise
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            u = self.api("GET", f"/hub/api/users/{user}")
            server = u.get("servers", {}).get("", {})
            if server.get("ready"):
                return
            time.sleep(0.5)
        raise TimeoutError(f"{user}'s server did not start")

    def stop_server(self, user: str) -> None:
        try:
            self.api("DELETE", f"/hub/api/users/{user}/server")
        except urllib.error.HTTPError:
            pass


def code_cells(notebook: Path) -> list[str]:
    nb = json.loads(notebook.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


async def _run_cells(ws_url: str, token: str, cells: list[str], timeout: float) -> list[dict]:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    conn = await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {token}"}))
    results = []
    session = uuid.uuid4().hex
    for code in cells:
        msg_id = uuid.uuid4().hex
        msg = {
            "header": {
                "msg_id": msg_id,
                "username": "test",
                "session": session,
                "msg_type": "execute_request",
                "version": "5.3",
            },
            "parent_header": {},
            "metadata": {},
            "content": {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
            },
            "channel": "shell",
            "buffers": [],
        }
        await conn.write_message(json.dumps(msg))
        outputs: list[dict] = []
        status = None
        deadline = time.monotonic() + timeout
        while status is None or not any(o.get("idle") for o in outputs):
            raw = await asyncio.wait_for(conn.read_message(), max(1, deadline - time.monotonic()))
            if raw is None:
                raise ConnectionError("kernel websocket closed")
            m = json.loads(raw)
            if m.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            t = m["header"]["msg_type"]
            if t == "execute_reply":
                status = m["content"]["status"]
            elif t == "status" and m["content"]["execution_state"] == "idle":
                outputs.append({"idle": True})
            elif t in ("stream", "display_data", "execute_result", "error"):
                outputs.append({"type": t, **m["content"]})
        results.append({"code": code, "status": status, "outputs": outputs})
    conn.close()
    return results


def run_notebook(hub: Hub, user: str, token: str, notebook: str, cells: list[str], timeout: float = 300) -> list[dict]:
    """Open ``notebook`` in the user's server (a session, so the kernel knows its name) and
    run ``cells`` in it, in order; return each cell's status and outputs."""
    base = f"/user/{user}"
    s = hub.api(
        "POST",
        f"{base}/api/sessions",
        {"path": notebook, "type": "notebook", "kernel": {"name": "python3"}},
        token=token,
    )
    kid = s["kernel"]["id"]
    ws = hub.url.replace("http://", "ws://") + f"{base}/api/kernels/{kid}/channels"
    try:
        return asyncio.run(_run_cells(ws, token, cells, timeout))
    finally:
        try:
            hub.api("DELETE", f"{base}/api/sessions/{s['id']}", token=token)
        except urllib.error.HTTPError:
            pass
