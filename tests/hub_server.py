"""A Hugging Face Hub on 127.0.0.1 that speaks the HTTP API ``huggingface_hub`` uses.

Enough of it for ``HfApi.model_info`` / ``repo_info``, ``list_repo_tree`` and downloads through
``resolve`` (``HEAD`` for metadata, ``GET`` with ``Range``): the answers carry what the real Hub
sends (``X-Repo-Commit``, ``ETag`` = the git oid of a small file or the sha256 of an LFS file,
``X-Linked-Etag`` / ``X-Linked-Size`` for LFS files), and no Xet headers, so the client takes the
plain HTTP path. Each repository is a folder served at one fixed commit.

Faults for the tests: a status for every request of a repository (401, 403, 404, 503 …), a
connection cut after N bytes of a file, wrong bytes for a file whose listing keeps the right
sha256, and a log of every request (method, path, Range).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_THRESHOLD = 10_000  # files at least this big are "LFS" files, like the Hub's *.safetensors


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    """One repository: its files at one commit, and the faults to play."""

    files: dict[str, bytes]
    commit: str
    status: int | None = None  # answer every request with this status
    cut_after: dict[str, int] = field(default_factory=dict)  # file -> bytes sent before a cut
    corrupt: set[str] = field(default_factory=set)  # files served with one byte changed
    fail_first: dict[str, int] = field(default_factory=dict)  # file -> 503s before serving it

    def entry(self, name: str) -> dict:
        data = self.files[name]
        info: dict = {"type": "file", "oid": git_blob_oid(data), "size": len(data), "path": name}
        if len(data) >= LFS_THRESHOLD:
            info["lfs"] = {
                "oid": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "pointerSize": 134,
            }
        return info


@dataclass
class Request:
    method: str
    path: str
    range: str | None


class HubServer:
    """``with HubServer() as hub: hub.add("owner/name", folder)``; ``hub.url`` is the endpoint."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.log: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                server._handle(self, head=False)

            def do_HEAD(self) -> None:
                server._handle(self, head=True)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def add(self, repo: str, folder: Path, commit: str | None = None) -> Repo:
        files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
        commit = commit or hashlib.sha1(repo.encode() + b"".join(files.values())).hexdigest()
        self.repos[repo] = Repo(files, commit)
        return self.repos[repo]

    def requests(self, method: str | None = None, contains: str = "") -> list[Request]:
        with self._lock:
            return [
                r for r in self.log if (method is None or r.method == method) and contains in r.path
            ]

    def downloaded(self) -> list[str]:
        """The files fetched with GET through resolve (names), in order."""
        return [
            r.path.split("/resolve/", 1)[1].split("/", 1)[1]
            for r in self.requests("GET", "/resolve/")
        ]

    # --- the API --------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, head: bool) -> None:
        path = unquote(urlsplit(handler.path).path)
        with self._lock:
            self.log.append(Request(handler.command, path, handler.headers.get("Range")))
        if path.startswith("/api/models/"):
            self._api(handler, path.removeprefix("/api/models/"))
        elif "/resolve/" in path:
            self._resolve(handler, path.lstrip("/"), head)
        else:
            self._send(handler, 404, b'{"error": "not found"}', {"X-Error-Code": "EntryNotFound"})

    def _repo(self, handler: BaseHTTPRequestHandler, repo_id: str) -> Repo | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            self._send(
                handler, 404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"}
            )
            return None
        if repo.status is not None:
            headers = {"X-Error-Code": "GatedRepo"} if repo.status == 403 else {}
            if repo.status == 401:
                headers = {"X-Error-Code": "RepoNotFound"}
            self._send(handler, repo.status, b'{"error": "refused"}', headers)
            return None
        return repo

    def _api(self, handler: BaseHTTPRequestHandler, rest: str) -> None:
        parts = rest.split("/")
        repo_id = "/".join(parts[:2])
        repo = self._repo(handler, repo_id)
        if repo is None:
            return
        tail = parts[2:]
        if tail and tail[0] == "tree":  # /api/models/OWNER/NAME/tree/REV[/PATH]
            body = json.dumps([repo.entry(n) for n in sorted(repo.files)]).encode()
            self._send(handler, 200, body, {"Content-Type": "application/json"})
            return
        if tail and tail[0] == "revision" and tail[1] not in ("main", repo.commit):
            self._send(
                handler,
                404,
                b'{"error": "Revision not found"}',
                {"X-Error-Code": "RevisionNotFound"},
            )
            return
        siblings = []
        for name in sorted(repo.files):
            entry = repo.entry(name)
            sibling: dict = {"rfilename": name, "size": entry["size"], "blobId": entry["oid"]}
            if "lfs" in entry:
                sibling["lfs"] = {
                    "size": entry["size"],
                    "sha256": entry["lfs"]["oid"],
                    "pointerSize": 134,
                }
            siblings.append(sibling)
        info = {
            "id": repo_id,
            "modelId": repo_id,
            "sha": repo.commit,
            "private": False,
            "gated": False,
            "siblings": siblings,
        }
        self._send(handler, 200, json.dumps(info).encode(), {"Content-Type": "application/json"})

    def _resolve(self, handler: BaseHTTPRequestHandler, path: str, head: bool) -> None:
        repo_part, rest = path.split("/resolve/", 1)
        repo = self._repo(handler, repo_part)
        if repo is None:
            return
        revision, name = rest.split("/", 1)
        if revision not in ("main", repo.commit) or name not in repo.files:
            self._send(
                handler, 404, b'{"error": "Entry not found"}', {"X-Error-Code": "EntryNotFound"}
            )
            return
        data = repo.files[name]
        entry = repo.entry(name)
        etag = entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]
        headers = {"X-Repo-Commit": repo.commit, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        if "lfs" in entry:
            headers |= {"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(len(data))}
        if head:
            self._send(handler, 200, b"", headers, content_length=len(data))
            return
        with self._lock:
            failures = repo.fail_first.get(name, 0)
            if failures:
                repo.fail_first[name] = failures - 1
        if failures:
            self._send(handler, 503, b'{"error": "busy"}', {})
            return
        if name in repo.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        wanted = handler.headers.get("Range")
        if wanted and wanted.startswith("bytes="):
            start = int(wanted.removeprefix("bytes=").split("-", 1)[0])
        body = data[start:]
        status = 206 if start else 200
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        with self._lock:
            cut = repo.cut_after.pop(name, None)
        if cut is not None:  # send part of the body, then drop the connection
            handler.send_response(status)
            for key, value in headers.items():
                handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body[: max(0, cut - start)])
            handler.wfile.flush()
            handler.close_connection = True
            return
        self._send(handler, status, body, headers)

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict[str, str],
        content_length: int | None = None,
    ) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header(
            "Content-Length", str(len(body) if content_length is None else content_length)
        )
        handler.end_headers()
        if body:
            handler.wfile.write(body)
