"""Command ``serve``: a local explorer of a finished run; sliders for the radius, the core
thresholds and the metric weights re-cluster the run's weighted points and redraw the map and
table, saying what merged, split, entered or left the top N. See ``docs/serve.md``."""

from __future__ import annotations

import html
import os
import signal
import string
import tempfile
import threading
import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from stclusters.cli import _Command, _fail, _signals_unwind, console, err


class StopSignals:
    """While in the block, Ctrl-C (SIGINT) and SIGTERM only set a flag that :meth:`wait`
    returns on; the previous handlers come back at the end. Main thread only."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._got: list[str] = []
        self._previous: dict[int, object] = {}

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._got.append(signal.Signals(signum).name)
        self._stop.set()

    def __enter__(self) -> StopSignals:
        self._previous = {s: signal.signal(s, self._on_signal)
                          for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def wait(self) -> str:
        """Block until a signal came; its name (``SIGINT``, ``SIGTERM``)."""
        while not self._stop.wait(0.5):  # a timed wait: signals are handled between waits
            pass
        return self._got[0]


#: The page that sends the browser on to the server's URL (``$href``, HTML-escaped).
_REDIRECT = string.Template(
    '<!DOCTYPE html><html><head><meta charset="utf-8">'
    '<meta name="referrer" content="no-referrer">'
    '<meta http-equiv="refresh" content="0;url=$href"><title>stclusters serve</title>'
    '</head><body><a href="$href">Open the stclusters explorer</a></body></html>\n')


def redirect_file(url: str) -> Path:
    """A private (mode 0600) temporary HTML page that sends the browser on to ``url``.

    Opening this file instead of ``url`` keeps the token off the command line of the
    browser launcher (``xdg-open`` …), which every local user can read in the process list.
    The caller removes the file when the server stops.
    """
    fd, name = tempfile.mkstemp(prefix="stclusters-serve-", suffix=".html")  # mode 0600
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(_REDIRECT.substitute(href=html.escape(url, quote=True)))
    return Path(name)


def serve_cmd(
    run_dir: Annotated[Path, typer.Argument(
        help="A run's output folder (the --out of `stclusters rank`).", metavar="RUN_DIR",
        show_default=False)],
    host: Annotated[str, typer.Option(
        "--host", help="Address to listen on. Anything but a loopback address lets other "
                       "machines reach the explorer (the token still guards it).",
        metavar="ADDRESS")] = "127.0.0.1",
    port: Annotated[int, typer.Option(
        "--port", min=0, max=65535, help="TCP port; 0 picks a free one (printed).",
        metavar="PORT")] = 0,
    no_browser: Annotated[bool, typer.Option(
        "--no-browser", help="Do not open the page in the default browser.")] = False,
) -> None:
    """Explore a run in the browser: move the sliders, the clusters are recomputed.

    Sliders for the radius eps (km), each metric's core threshold (weight units) and each
    metric's weight in the score re-cluster the run's weighted points with the engine's
    own kernels (no recount) and redraw the map and the ranking table; a status line says
    what merged, split, entered or left the top N against the run. The run is opened
    read-only. The printed URL holds a token made at this start: only a page that has it
    can use the server. Ctrl-C stops it.

    Example: stclusters serve out

    Also: stclusters serve out --port 8765 --no-browser
    """
    from stclusters.serve.app import is_loopback, start_server  # noqa: PLC0415

    if not is_loopback(host):
        err.print(f"[bold red]warning:[/] --host {host} is not a loopback address: other "
                  "machines on the network can reach this explorer (anyone with the URL and "
                  "its token can use it); use --host 127.0.0.1 to keep it local",
                  highlight=False)
    try:
        with _signals_unwind():
            server = start_server(run_dir, host=host, port=port)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every error becomes one line
        _fail(exc)
    opener: Path | None = None
    try:
        # The handlers are in place before the URL is shown: a Ctrl-C at any time after it
        # stops the server cleanly.
        with StopSignals() as signals:
            console.print(f"serving {run_dir} at {server.url}", highlight=False, markup=False)
            console.print("press Ctrl-C to stop", highlight=False, markup=False)
            if not no_browser:
                opener = redirect_file(server.url)
                webbrowser.open(opener.as_uri())
            why = signals.wait()
    finally:
        server.shutdown()
        if opener is not None:
            opener.unlink(missing_ok=True)
    console.print(f"stopped ({why}): port {server.port} released", highlight=False,
                  markup=False)


def register(app: typer.Typer) -> None:
    """Add ``serve`` to ``app``."""
    app.command("serve", cls=_Command, epilog="Exit codes: 0 stopped by Ctrl-C or SIGTERM; "
                "1 internal error; 2 a folder that is not a finished run, a bad --port, or an "
                "address that cannot be bound (in use, unknown).")(serve_cmd)
