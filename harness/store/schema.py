"""The store's tables and views: part of the public surface, since users query the file directly.

The schema is versioned in `meta`; each MIGRATIONS entry upgrades it by one version, applied on open after a
backup copy (see connection.py).
"""

SCHEMA_VERSION = 2


# Each entry upgrades the schema from version (index) to version (index + 1).
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
        """CREATE TABLE models (
            model_id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL UNIQUE, kind VARCHAR NOT NULL,
            source VARCHAR, fingerprint VARCHAR NOT NULL, n_params BIGINT, parents VARCHAR[],
            recipe JSON, created_at TIMESTAMPTZ)""",
        """CREATE TABLE tasks (
            task_id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, version VARCHAR, source VARCHAR,
            config_hash VARCHAR NOT NULL, primary_metric VARCHAR, higher_is_better BOOLEAN,
            n_items INTEGER, config JSON)""",
        """CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY, model_id VARCHAR NOT NULL, task_id VARCHAR NOT NULL,
            backend VARCHAR NOT NULL, backend_args JSON, item_limit INTEGER, status VARCHAR NOT NULL,
            error VARCHAR, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, environment JSON,
            n_requests INTEGER, n_cached INTEGER, n_computed INTEGER)""",
        """CREATE TABLE requests (
            run_id VARCHAR NOT NULL, req_hash VARCHAR NOT NULL, request_type VARCHAR NOT NULL,
            doc_id INTEGER, idx INTEGER, logprob DOUBLE, is_greedy BOOLEAN, n_tokens INTEGER,
            n_chars INTEGER, n_bytes INTEGER, n_words INTEGER, generation VARCHAR,
            PRIMARY KEY (run_id, request_type, doc_id, idx))""",
        """CREATE TABLE samples (
            run_id VARCHAR NOT NULL, doc_id INTEGER NOT NULL, metric VARCHAR NOT NULL, value DOUBLE)""",
        """CREATE TABLE scores (
            run_id VARCHAR NOT NULL, metric VARCHAR NOT NULL, value DOUBLE, stderr DOUBLE, n INTEGER,
            PRIMARY KEY (run_id, metric))""",
        """CREATE TABLE external_scores (
            source VARCHAR NOT NULL, snapshot VARCHAR, competitor VARCHAR NOT NULL,
            benchmark VARCHAR NOT NULL, replicate VARCHAR NOT NULL DEFAULT '', value DOUBLE,
            higher_is_better BOOLEAN DEFAULT true, is_aggregate BOOLEAN DEFAULT false,
            PRIMARY KEY (source, competitor, benchmark, replicate))""",
        """CREATE TABLE rankings (
            ranking_id VARCHAR PRIMARY KEY, method VARCHAR NOT NULL, params JSON, input_hash VARCHAR,
            created_at TIMESTAMPTZ)""",
        """CREATE TABLE ranking_rows (
            ranking_id VARCHAR NOT NULL, competitor VARCHAR NOT NULL, score DOUBLE, rank INTEGER,
            ci_low DOUBLE, ci_high DOUBLE, PRIMARY KEY (ranking_id, competitor))""",
        """CREATE TABLE hpo_trials (
            study VARCHAR NOT NULL, optimizer VARCHAR NOT NULL, task VARCHAR NOT NULL, seed INTEGER NOT NULL,
            trial INTEGER NOT NULL, config JSON, cost DOUBLE, budget DOUBLE, wall_time DOUBLE,
            PRIMARY KEY (study, optimizer, task, seed, trial))""",
        # One row per (model, task): the primary metric of the finished run that covers the most
        # items (a full run beats any --limit run).
        """CREATE VIEW leaderboard AS
            SELECT m.name AS model, t.name AS task, s.metric, s.value, s.stderr, s.n,
                   t.higher_is_better, r.run_id, r.item_limit
            FROM scores s JOIN runs r USING (run_id) JOIN models m USING (model_id)
            JOIN tasks t USING (task_id)
            WHERE r.status = 'done' AND s.metric = t.primary_metric
            QUALIFY row_number() OVER (PARTITION BY m.name, t.name
                                       ORDER BY r.item_limit IS NULL DESC, s.n DESC, r.finished_at DESC) = 1""",
    ],
    [
        # lm-eval task groups: `member` (a leaf task or another group) belongs to `group_name`, which aggregates
        # its members by `rule` (lm-eval's aggregate_metric_list: metric, aggregation, weight_by_size, filters).
        """CREATE TABLE task_groups (
            group_name VARCHAR NOT NULL, member VARCHAR NOT NULL, rule JSON,
            PRIMARY KEY (group_name, member))""",
    ],
]

