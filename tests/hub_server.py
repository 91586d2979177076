"""A small Hub-compatible HTTP server on 127.0.0.1 for tests: the endpoints the real huggingface_hub and
transformers clients call to create model repos, commit files, list and download them, with or without a namespace
("gpt2" as well as "EleutherAI/pythia-70m"), and the agent-harness registry the client fetches once (empty). Anything
else is a loud 404. ``HubState.add_folder`` seeds a repo from a local folder (a registry release's layout, a model).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


class HubState:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.commits: dict[str, str] = {}
        self.lock = threading.Lock()
        self.unknown_routes: list[str] = []

    def commit(self, repo: str, files: dict[str, bytes], deleted: list[str]) -> str:
        with self.lock:
            tree = self.repos.setdefault(repo, {})
            tree.update(files)
            for path in deleted:
                tree.pop(path, None)
            sha = hashlib.sha1(f"{repo}{time.time_ns()}{sorted(tree)}".encode()).hexdigest()
            self.commits[repo] = sha
            return sha

    def add_folder(self, repo: str, folder: Path, path_in_repo: str = "") -> str:
        """Commit every file under ``folder`` to ``repo`` (created if absent), below ``path_in_repo``."""
        prefix = f"{path_in_repo.strip('/')}/" if path_in_repo.strip("/") else ""
        files = {prefix + path.relative_to(folder).as_posix(): path.read_bytes()
                 for path in sorted(Path(folder).rglob("*")) if path.is_file()}
        return self.commit(repo, files, [])


REPO = r"(?P<repo>(?:[^/]+/)?[^/]+)"  # namespace/name, or a bare legacy name such as "gpt2"


class Handler(BaseHTTPRequestHandler):
    state: HubState
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    # ------------------------------------------------------------------ helpers
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: bytes = b"", content_type: str = "application/json", headers=None,
              head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(payload)

    def _json(self, status: int, value, headers=None, head: bool = False) -> None:
        self._send(status, json.dumps(value).encode(), headers=headers, head=head)

    def _not_found(self, code: str, message: str, head: bool = False) -> None:
        self._json(404, {"error": message}, headers={"X-Error-Code": code, "X-Error-Message": message}, head=head)

    def _info(self, repo: str) -> dict:
        files = self.state.repos[repo]
        return {"id": repo, "modelId": repo, "sha": self.state.commits[repo], "private": False, "tags": [],
                "siblings": [{"rfilename": name, "size": len(data)} for name, data in sorted(files.items())]}

    # ------------------------------------------------------------------ routes
    def do_POST(self) -> None:
        body = self._body()
        path = urlparse(self.path).path
        if path == "/api/repos/create":
            request = json.loads(body or b"{}")
            repo = (
                f"{request.get('organization') or 'user'}/{request['name']}"
                if "/" not in request["name"]
                else request["name"]
            )
            if repo in self.state.repos:
                return self._json(
                    409, {"error": "You already created this model repo", "url": f"{self._base()}/{repo}"}
                )
            self.state.commit(repo, {}, [])
            return self._json(200, {"url": f"{self._base()}/{repo}", "name": repo})
        if path == "/api/validate-yaml":
            return self._json(200, {"errors": [], "warnings": []})
        match = re.fullmatch(rf"/api/models/{REPO}/preupload/(?P<rev>[^/]+)", path)
        if match:
            files = json.loads(body)["files"]
            return self._json(
                200,
                {
                    "files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files],
                    "commitOid": self.state.commits.get(match["repo"]),
                },
            )
        match = re.fullmatch(rf"/api/models/{REPO}/commit/(?P<rev>[^/]+)", path)
        if match:
            repo = unquote(match["repo"])
            if repo not in self.state.repos:
                return self._not_found("RepoNotFound", f"Repository {repo} not found")
            files, deleted = {}, []
            for line in body.decode().splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                if item["key"] == "file":
                    files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                elif item["key"] == "deletedFile":
                    deleted.append(item["value"]["path"])
                elif item["key"] == "lfsFile":
                    return self._json(400, {"error": "this test server takes regular uploads only"})
            sha = self.state.commit(repo, files, deleted)
            return self._json(
                200, {"commitUrl": f"{self._base()}/{repo}/commit/{sha}", "commitOid": sha, "pullRequestUrl": None}
            )
        self._unknown("POST")

    def do_HEAD(self) -> None:
        self._get(head=True)

    def do_GET(self) -> None:
        self._get(head=False)

    def _get(self, head: bool) -> None:
        self._body()
        path = urlparse(self.path).path
        if path == "/api/agent-harnesses":
            return self._json(200, {"standardEnvVars": [], "harnesses": {}}, head=head)
        match = re.fullmatch(rf"/api/models/{REPO}(/revision/(?P<rev>[^/]+))?", path)
        if match:
            repo = unquote(match["repo"])
            if repo not in self.state.repos:
                return self._not_found("RepoNotFound", f"Repository {repo} not found", head)
            return self._json(200, self._info(repo), head=head)
        match = re.fullmatch(rf"/api/models/{REPO}/tree/(?P<rev>[^/]+)(/(?P<sub>.*))?", path)
        if match:
            repo = unquote(match["repo"])
            if repo not in self.state.repos:
                return self._not_found("RepoNotFound", f"Repository {repo} not found", head)
            prefix = (match["sub"] or "").strip("/")
            entries = [
                {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                for name, data in sorted(self.state.repos[repo].items())
                if not prefix or name.startswith(prefix + "/")
            ]
            return self._json(200, entries, head=head)
        match = re.fullmatch(rf"/{REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", path)
        if match:
            repo, name = unquote(match["repo"]), unquote(match["file"])
            if repo not in self.state.repos:
                return self._not_found("RepoNotFound", f"Repository {repo} not found", head)
            data = self.state.repos[repo].get(name)
            if data is None:
                return self._not_found("EntryNotFound", f"{name} does not exist in {repo}", head)
            headers = {"ETag": f'"{hashlib.sha1(data).hexdigest()}"', "X-Repo-Commit": self.state.commits[repo]}
            return self._send(200, data, "application/octet-stream", headers=headers, head=head)
        self._unknown("GET")

    def _unknown(self, method: str) -> None:
        self.state.unknown_routes.append(f"{method} {self.path}")
        self._not_found("NotImplemented", f"test hub server: no route for {method} {self.path}")

    def _base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"


def start_hub_server() -> tuple[ThreadingHTTPServer, HubState, str]:
    state = HubState()
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, state, f"http://127.0.0.1:{server.server_address[1]}"


def run_against_hub(url: str, cache, code: str) -> str:
    """Run ``code`` in a fresh Python process whose Hub client talks to the server at ``url`` (cache in ``cache``);
    fail with its stderr unless it exits 0, and return its stdout."""
    env = {**os.environ, "HF_ENDPOINT": url, "HF_TOKEN": "test-token", "HF_HUB_CACHE": str(cache),
           "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "0", "WANDB_MODE": "disabled"}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
