"""The viewer's HTTP server: the standard library's threading server, GET and HEAD only, the store opened read-only
and sandboxed (as `harness query` opens it) for each request and closed after it, so a writer is blocked only for
the moment a page is read, and a store held by a writer is answered with a page that says so.
"""

from __future__ import annotations

import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from harness.common.errors import HarnessError
from harness.view.board import leaderboard
from harness.view.html import esc, page
from harness.view.model import NotFound, model_page
from harness.view.optimizers import optimizers_page
from harness.view.samples import diff_page, samples_page
from harness.view.snapshot import Snapshot, stamp
from harness.view.task import task_page, tasks_page

ROUTES = {"/": leaderboard, "/model": model_page, "/tasks": tasks_page, "/task": task_page,
          "/samples": samples_page, "/diff": diff_page, "/optimizers": optimizers_page}
STATIC = {"/static/view.css": ("view.css", "text/css; charset=utf-8")}
RETRY_S = 5
# No script at all, no frame, nothing fetched from anywhere but this server; inline style attributes draw the bars.
HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                                      "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


class Viewer:
    """The store behind the pages, and the snapshot of it that the caches belong to."""

    def __init__(self, db: Path):
        self.db = Path(db)
        self.lock = threading.Lock()
        self.snapshot = Snapshot(stamp(self.db))

    def render(self, path: str, query: dict) -> tuple[int, str]:
        """(status, html) of one page; every failure is a page that says what happened, never a traceback."""
        from harness.store import Store

        handler = ROUTES.get(path)
        if handler is None:
            return 404, page("Not found", f"<p>no page {esc(path)} here</p>")
        with self.lock:  # one page at a time reads the store; static files are served beside it
            current = stamp(self.db)
            if current != self.snapshot.stamp:
                self.snapshot = Snapshot(current)
            try:
                with Store.open(self.db, read_only=True) as store:
                    return 200, handler(store, self.snapshot, query)
            except NotFound as exc:
                return 404, page("Not found", f'<p class="refused">{esc(exc)}</p>')
            except HarnessError as exc:
                if str(exc).startswith("database is busy"):
                    return 503, busy_page(exc)
                return 409, page("Cannot show this", f'<p class="refused">{esc(exc)}</p>')
            except Exception as exc:  # a bug: one line on the page, the traceback on the server's stderr
                traceback.print_exc(file=sys.stderr)
                return 500, page("Internal error", f'<p class="refused">{esc(type(exc).__name__)}: {esc(exc)}</p>')


def busy_page(exc: Exception) -> str:
    """The store is held by a writer (an `harness eval` in progress): say so and look again in a few seconds."""
    html = page("The store is busy", f'<p class="refused" id="busy">{esc(exc)}</p><p>This page looks again every '
                f"{RETRY_S} seconds; nothing is shown until the writer lets go, so no half-written number is.</p>")
    return html.replace("<head>", f'<head><meta http-equiv="refresh" content="{RETRY_S}">', 1)


class Handler(BaseHTTPRequestHandler):
    viewer: Viewer
    server_version = "harness-view"
    sys_version = ""
    quiet = False

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def _refuse(self) -> None:
        body = page("Read-only", "<p>harness view only reads the store: GET and HEAD are the only methods.</p>")
        self._send(405, body.encode(), "text/html; charset=utf-8", True, {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse

    def _respond(self, send_body: bool) -> None:
        parts = urlsplit(self.path)
        if parts.path in STATIC:
            name, kind = STATIC[parts.path]
            data = resources.files("harness.view").joinpath("static", name).read_bytes()
            self._send(200, data, kind, send_body)
            return
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        status, html = self.viewer.render(parts.path, query)
        self._send(status, html.encode("utf-8"), "text/html; charset=utf-8", send_body)

    def _send(self, status: int, data: bytes, kind: str, send_body: bool, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for key, value in {**HEADERS, **(extra or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:
        if not self.quiet:
            sys.stderr.write(f"{self.address_string()} {format % args}\n".encode("ascii", "backslashreplace")
                             .decode("ascii"))


def make_server(db: Path, host: str = "127.0.0.1", port: int = 8000, quiet: bool = False) -> ThreadingHTTPServer:
    """A server for `db` bound to host:port (port 0: any free port; see server.server_address)."""
    handler = type("ViewHandler", (Handler,), {"viewer": Viewer(db), "quiet": quiet})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
