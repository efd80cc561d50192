"""`harness view`: browse the store in a web browser, on this machine, read-only."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer
from rich.text import Text

from harness.cli.commands._common import err, out
from harness.cli.options import DbOption
from harness.common.errors import HarnessError
from harness.common.paths import default_db
from harness.common.spec_files import one_line

LOCAL = "127.0.0.1"


def view(
    db: DbOption = default_db(),
    port: Annotated[int, typer.Option("--port", min=0, max=65535,
                                      help="Port to listen on (0: any free port; the URL printed names it).")] = 8000,
    host: Annotated[Optional[str], typer.Option(
        "--host", help="Address to bind (default 127.0.0.1, this machine only). Any other address lets other "
        "machines read every name and number in the store.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Do not log each request on stderr.")] = False,
) -> None:
    """Serve a local web leaderboard over the store: leaderboard (any ranking method), models, tasks, samples,
    diffs and optimizers. Read-only (GET only; the store is opened read-only and sandboxed, as `harness query`
    opens it, for each page); every asset is served by the viewer itself. Stop it with Ctrl-C."""
    from harness.store import Store
    from harness.view import make_server

    Store.open(db, read_only=True).close()  # a missing, foreign or too-new store is refused now, in one line
    if host is not None and host not in (LOCAL, "localhost", "::1"):
        err.print(Text(one_line(f"warning: --host {host}: the viewer is reachable from other machines; it has no "
                                "login, and shows every name and number in the store"), style="yellow"),
                  soft_wrap=True)
    try:
        server = make_server(db, host or LOCAL, port, quiet=quiet)
    except OSError as exc:
        raise HarnessError(f"--port {port}: cannot listen on {host or LOCAL} ({exc.strerror or exc})") from None
    bound, actual = server.server_address[:2]
    shown = f"[{bound}]" if ":" in str(bound) else bound
    out.print(Text(one_line(f"harness view: {db} at http://{shown}:{actual}/ (Ctrl-C to stop)")), soft_wrap=True)
    sys.stdout.flush()  # the URL is the first line a script or person waits for
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
