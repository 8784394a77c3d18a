"""The explorer's local web server (``stclusters serve``): Python's ``http.server``, no
framework.

Security model (``docs/serve.md``):

* binds 127.0.0.1 unless told otherwise; on a loopback address the ``Host`` header must name
  the loopback too (a page of another site cannot reach it by DNS rebinding);
* a random token per start (``secrets.token_urlsafe``) is the first path segment of every
  URL: a request without it, or with another, gets 403 (another local user's page cannot
  drive the server, the token is compared in constant time);
* it serves a fixed map of names to in-package files and nothing else: no path from a request
  ever reaches the file system (so no traversal, whatever the encoding);
* the run is opened read-only, once, at start;
* request lines over :data:`MAX_URL_BYTES` get 414, bodies over :data:`MAX_BODY_BYTES` 413,
  any Transfer-Encoding 411; a connection silent for :data:`IDLE_TIMEOUT_S` is closed and at
  most :data:`MAX_CONNECTIONS` are served at once;
* every reply forbids framing and sniffing, and the page's Content-Security-Policy allows
  only its own script, style and API.

Re-clustering runs in the request's own thread (``ThreadingHTTPServer``), one at a time; a
request that waits while a newer one of the same page (its ``client`` id) has arrived is
answered ``409 superseded`` without computing, so the latest slider position is served next.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
import socket
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from stclusters.errors import ParameterError, StclustersError
from stclusters.serve.explorer import Explorer

__all__ = ["ExplorerServer", "MAX_BODY_BYTES", "MAX_URL_BYTES", "is_loopback", "start_server"]

#: Longest request target accepted (bytes); longer ones get 414.
MAX_URL_BYTES = 2048
#: Largest request body accepted (bytes); larger ones get 413.
MAX_BODY_BYTES = 2048
#: Re-clustered settings kept for an instant reply (a slider moved back and forth).
RESULT_CACHE = 32
#: Seconds a connection may stay silent before it is closed (an idle socket must not hold
#: a thread for ever).
IDLE_TIMEOUT_S = 15.0
#: Connections served at once; more are closed at once, unread.
MAX_CONNECTIONS = 32
#: Page clients whose latest request number is remembered (oldest forgotten first).
MAX_CLIENTS = 64

#: Served names → (package, path parts, content type). Nothing else is served.
_ASSETS: dict[str, tuple[tuple[str, ...], str]] = {
    "explorer.js": (("serve", "assets", "explorer.js"), "text/javascript; charset=utf-8"),
    "explorer.css": (("serve", "assets", "explorer.css"), "text/css; charset=utf-8"),
    "outlines.json": (("data", "outlines", "countries-110m.json"),
                      "application/json; charset=utf-8"),
}

_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>stclusters explorer</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="explorer.css">
</head>
<body>
<noscript>The explorer needs JavaScript.</noscript>
<div id="app"></div>
<script src="explorer.js"></script>
</body>
</html>
"""


def host_name(header: str) -> str:
    """The host name of a ``Host`` header, without port or IPv6 brackets (``""`` when it
    cannot be parsed)."""
    try:
        return urlsplit("//" + header).hostname or ""
    except ValueError:
        return ""


def is_loopback(host: str) -> bool:
    """Is ``host`` (an address or ``localhost``) a loopback address?"""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _asset_bytes(name: str) -> bytes:
    parts, _ = _ASSETS[name]
    return resources.files("stclusters").joinpath(*parts).read_bytes()


class Superseded(Exception):
    """A newer re-clustering request arrived while this one waited."""


class _Compute:
    """One re-clustering at a time; a waiting request gives way to a newer one of the same
    client (another tab's requests never supersede it); recent results cached by setting."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
        self._run = threading.Lock()
        self._seq_lock = threading.Lock()
        self._seq = 0
        self._latest: OrderedDict[str, int] = OrderedDict()
        self._cache: OrderedDict[tuple, dict[str, Any]] = OrderedDict()

    def _cached(self, key: tuple) -> dict[str, Any] | None:
        with self._seq_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return {**hit, "cached": True}
        return None

    def _take_number(self, client: str) -> int:
        """A new request number, remembered as ``client``'s latest."""
        with self._seq_lock:
            self._seq += 1
            self._latest[client] = self._seq
            self._latest.move_to_end(client)
            while len(self._latest) > MAX_CLIENTS:
                self._latest.popitem(last=False)
            return self._seq

    def _is_latest(self, client: str, mine: int) -> bool:
        with self._seq_lock:
            return self._latest.get(client, mine) == mine

    def __call__(self, query: Mapping[str, str], *, client: str = "") -> dict[str, Any]:
        """Re-cluster under ``query`` for ``client`` (the page's id; ``""`` for one anonymous
        client).

        Raises
        ------
        Superseded
            A newer request of the same client arrived while this one waited.
        """
        params = self.explorer.params_for(query)  # ParameterError before any waiting
        key = (tuple(sorted(params.source_weights.items())),
               tuple((m, params.source(m).eps_km, params.source(m).min_weight)
                     for m in self.explorer.metrics))
        hit = self._cached(key)  # no wait behind a re-clustering for a known setting
        if hit is not None:
            return hit
        mine = self._take_number(client)
        with self._run:
            hit = self._cached(key)
            if hit is not None:
                return hit
            if not self._is_latest(client, mine):
                raise Superseded
            t0 = time.perf_counter()
            result = self.explorer.recluster(params)
            result["timing_ms"]["total"] = round((time.perf_counter() - t0) * 1000, 1)
            with self._seq_lock:
                self._cache[key] = result
                if len(self._cache) > RESULT_CACHE:
                    self._cache.popitem(last=False)
            return {**result, "cached": False}


@dataclass
class ExplorerServer:
    """A started explorer: its URL (with the token), and how to stop it."""

    httpd: ThreadingHTTPServer
    thread: threading.Thread
    token: str
    host: str
    explorer: Explorer

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/{self.token}/"

    def shutdown(self) -> None:
        """Stop serving, wait for the serving thread, release the port."""
        self.httpd.shutdown()
        self.thread.join()
        self.httpd.server_close()


def _handler(explorer: Explorer, token: str, *, loopback: bool, run_json: bytes,
             compute: _Compute, idle_timeout_s: float = IDLE_TIMEOUT_S
             ) -> type[BaseHTTPRequestHandler]:
    prefix = f"/{token}/"

    class Handler(BaseHTTPRequestHandler):
        server_version = "stclusters-explorer"
        sys_version = ""
        protocol_version = "HTTP/1.1"
        timeout = idle_timeout_s  # socket timeout: a silent client is dropped

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base name
            pass  # the command's terminal is not a log; errors go to the client

        # -------------------------------------------------------------- replies
        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Content-Security-Policy", _CSP)
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, data: Any) -> None:
            self._send(status, json.dumps(data, allow_nan=False, separators=(",", ":"))
                       .encode("utf-8"), "application/json; charset=utf-8")

        def _error(self, status: int, message: str) -> None:
            self.close_connection = True
            self._json(status, {"error": message})

        def send_error(self, code: int, message: str | None = None,
                       explain: str | None = None) -> None:
            """http.server's own errors (bad request line, unknown method…) with the same
            headers as every reply; an unknown method is 405, not 501."""
            if code == HTTPStatus.NOT_IMPLEMENTED:
                code, message = HTTPStatus.METHOD_NOT_ALLOWED, "only GET, HEAD and POST"
            if not getattr(self, "command", None):
                self.command = "GET"  # the request line was unreadable: a body is sent
            self._error(code, message or HTTPStatus(code).phrase)

        # -------------------------------------------------------------- checks
        def _allowed(self) -> str | None:
            """The path after the token, or None once an error reply is sent."""
            if len(self.path.encode("latin-1", "replace")) > MAX_URL_BYTES:
                self._error(HTTPStatus.REQUEST_URI_TOO_LONG,
                            f"request target over {MAX_URL_BYTES} bytes")
                return None
            if self.headers.get("Transfer-Encoding"):  # a length must be announced
                self._error(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
                return None
            if loopback:
                if not is_loopback(host_name(self.headers.get("Host") or "")):
                    self._error(HTTPStatus.FORBIDDEN, "Host is not a loopback address")
                    return None
            path = urlsplit(self.path).path
            given = path[1:len(prefix) - 1] if path.startswith("/") else ""
            if not (hmac.compare_digest(given.encode(), token.encode())
                    and path.startswith(prefix)):
                self._error(HTTPStatus.FORBIDDEN, "missing or wrong token: open the URL "
                                                  "that `stclusters serve` printed")
                return None
            return path[len(prefix):]

        def _body_query(self) -> dict[str, str] | None:
            """A POST body (form-encoded or a JSON object), bounded."""
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY_BYTES:
                self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                            f"request body over {MAX_BODY_BYTES} bytes")
                return None
            raw = self.rfile.read(length).decode("utf-8", "replace")
            if (self.headers.get("Content-Type") or "").startswith("application/json"):
                try:
                    data = json.loads(raw or "{}")
                except ValueError:
                    data = None
                if not isinstance(data, dict):
                    self._error(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
                    return None
                return {str(k): str(v) for k, v in data.items()}
            return self._pairs(raw)

        def _pairs(self, text: str) -> dict[str, str] | None:
            """A query string as a mapping; a key given twice is refused (None, 400 sent):
            which of two radii was meant cannot be guessed."""
            pairs = parse_qsl(text, keep_blank_values=True)
            keys = [k for k, _ in pairs]
            twice = sorted({k for k in keys if keys.count(k) > 1})
            if twice:
                self._error(HTTPStatus.BAD_REQUEST, f"given twice: {', '.join(twice)}")
                return None
            return dict(pairs)

        # -------------------------------------------------------------- methods
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            rest = self._allowed()
            if rest is None:
                return
            if self.headers.get("Content-Length") not in (None, "0"):
                if self._body_query() is None:
                    return
            query = self._pairs(urlsplit(self.path).query)
            if query is not None:
                self._route(rest, query)

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
            rest = self._allowed()
            if rest is None:
                return
            if rest == "api/cluster":  # a HEAD must not cost a re-clustering
                self._error(HTTPStatus.METHOD_NOT_ALLOWED, "api/cluster: GET or POST only")
                return
            self._route(rest, {})

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            rest = self._allowed()
            if rest is None:
                return
            body = self._body_query()
            if body is None:
                return
            if rest != "api/cluster":
                self._error(HTTPStatus.METHOD_NOT_ALLOWED, "POST only to api/cluster")
                return
            query = self._pairs(urlsplit(self.path).query)
            if query is not None:
                self._route(rest, {**query, **body})

        def _refuse(self) -> None:
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "only GET and POST")

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

        def _route(self, rest: str, query: dict[str, str]) -> None:
            if rest == "":
                self._send(HTTPStatus.OK, _PAGE.encode("utf-8"), "text/html; charset=utf-8")
            elif rest in _ASSETS:
                self._send(HTTPStatus.OK, _asset_bytes(rest), _ASSETS[rest][1])
            elif rest == "api/run":
                self._send(HTTPStatus.OK, run_json, "application/json; charset=utf-8")
            elif rest == "api/cluster":
                self._cluster(query)
            else:
                self._error(HTTPStatus.NOT_FOUND, "not found")

        def _cluster(self, query: dict[str, str]) -> None:
            seq = query.pop("seq", "")  # the page's own request number, echoed back
            if not (seq.isdigit() and len(seq) < 16):
                seq = None
            client = query.pop("client", "")[:64]  # the page's id: supersession is per page
            try:
                result = compute(query, client=client)
            except ParameterError as exc:
                self._error(HTTPStatus.BAD_REQUEST, str(exc))
                return
            except Superseded:
                self._json(HTTPStatus.CONFLICT, {"superseded": True})
                return
            except StclustersError as exc:
                self._error(HTTPStatus.UNPROCESSABLE_ENTITY, str(exc))
                return
            except Exception as exc:  # noqa: BLE001 - one line to the page, the server goes on
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR,
                            f"internal error: {type(exc).__name__}: {exc}")
                return
            self._json(HTTPStatus.OK, {**result, "seq": int(seq) if seq else None})

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    max_connections = MAX_CONNECTIONS

    def server_activate(self) -> None:
        self._slots = threading.BoundedSemaphore(self.max_connections)
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve in a thread if a slot is free, else close the connection at once."""
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A page that went away (its request aborted by a newer one) is normal: no
        traceback on the command's terminal; anything else, one line."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        sys.stderr.write(f"stclusters serve: request from {client_address[0]} failed: "
                         f"{type(exc).__name__}: {exc}\n")


class _Server6(_Server):
    address_family = socket.AF_INET6


#: The report payload's keys that the explorer page reads (the manifest, with the run's
#: local input paths, and the per-cluster details are not sent).
RUN_KEYS = ("version", "title", "label", "metrics", "score_weights", "coord_scale",
            "clusters", "points", "attribution")


def run_payload(explorer: Explorer) -> dict[str, Any]:
    """``GET /api/run``: what the page reads of the report's payload of the run (clusters
    of the top N with footprints, points, credits; :func:`stclusters.reports.html.
    build_payload`, keys :data:`RUN_KEYS`) and the explorer's sliders."""
    from stclusters.reports.html import build_payload  # noqa: PLC0415 - heavy, once

    payload = build_payload(explorer.run_dir, top_n=explorer.top_n)
    payload = {k: payload[k] for k in RUN_KEYS if k in payload}
    payload["title"] = f"stclusters explorer · {explorer.run_dir.resolve().name}"
    payload["explorer"] = explorer.run_summary()
    return payload


def start_server(run_dir: str | Path, *, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None, idle_timeout_s: float = IDLE_TIMEOUT_S
                 ) -> ExplorerServer:
    """Open the run and serve its explorer from a background thread.

    Parameters
    ----------
    run_dir : path
        A finished run folder (opened read-only).
    host : str
        Address to bind (default loopback only).
    port : int
        TCP port; 0 picks a free one (see :attr:`ExplorerServer.port`).
    token : str, optional
        The URL token (default: ``secrets.token_urlsafe(24)``, new at every start).
    idle_timeout_s : float
        Seconds a connection may stay silent before it is closed.

    Raises
    ------
    StclustersError
        Not a finished run folder.
        Or the address cannot be bound (port in use, no such address).
    """
    explorer = Explorer(run_dir)
    payload = run_payload(explorer)
    run_json = json.dumps(payload, allow_nan=False, separators=(",", ":")).encode("utf-8")
    token = token or secrets.token_urlsafe(24)
    handler = _handler(explorer, token, loopback=is_loopback(host), run_json=run_json,
                       compute=_Compute(explorer), idle_timeout_s=idle_timeout_s)
    server_class = _Server6 if ":" in host else _Server
    try:
        httpd = server_class((host, port), handler)
    except OSError as exc:
        raise StclustersError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                              hint="choose another --port (0 picks a free one) or --host"
                              ) from exc
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                              name="stclusters-serve", daemon=True)
    thread.start()
    return ExplorerServer(httpd, thread, token, host, explorer)
