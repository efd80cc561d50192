"""`harness view`: a local, read-only web leaderboard over the store.

server.py (HTTP, GET only, a store opened read-only per request), snapshot.py (what the pages derive from one state
of the store, through harness.tables and tournaments, cached until the file changes), html.py (escaping and page
parts), one file per page family: board.py, model.py, task.py, samples.py (samples and diff), optimizers.py; the
stylesheet is static/view.css. No SQL here: the queries are harness.store's (ViewQueries and the others).
"""

from harness.view.server import make_server

__all__ = ["make_server"]
