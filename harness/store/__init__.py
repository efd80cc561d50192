"""The DuckDB store: the only package that speaks SQL.

Users query the file directly, so table and column names are part of the public surface (schema.py). `Store` is
one connection (connection.py) with the queries of each concern mixed in: catalog, runs, results, samples,
saved rankings, external, hpo, item response fits, adaptive estimates, and what `harness view` reads.
"""

from harness.store.catalog import Catalog
from harness.store.connection import Connection
from harness.store.estimates import Estimates
from harness.store.external import ExternalScores
from harness.store.hpo import HpoTrials
from harness.store.irt import IrtFits
from harness.store.rankings import SavedRankings
from harness.store.records import ModelRecord, TaskRecord
from harness.store.results import Results
from harness.store.runs import Runs
from harness.store.samples import Samples
from harness.store.schema import SCHEMA_VERSION
from harness.store.view import ViewQueries


class Store(Catalog, Runs, Results, Samples, SavedRankings, ExternalScores, HpoTrials, IrtFits, Estimates,
            ViewQueries, Connection):
    """A connection to one store file; use as a context manager so the lock is always released."""


__all__ = ["SCHEMA_VERSION", "ModelRecord", "Store", "TaskRecord"]
