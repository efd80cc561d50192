"""The store's tables and views: part of the public surface, since users query the file directly.

The schema is versioned in `meta`; each MIGRATIONS entry upgrades it by one version, applied on open after a
backup copy (see connection.py).
"""

# A run's result-changing settings, from the settings it stored (backend_args): runs with the same value were asked
# the same way (backend, dtype, device kind, prompting), so their scores may be compared.
RUN_SETTINGS = """md5(concat_ws('|', backend, backend_args->>'dtype', split_part(backend_args->>'device', ':', 1),
    backend_args->>'max_model_len', backend_args->>'num_fewshot', backend_args->>'fewshot_seed',
    backend_args->>'apply_chat_template', backend_args->>'fewshot_as_multiturn', backend_args->>'system_instruction',
    backend_args->>'gen_kwargs'))"""

# How a model is named in rankings: its name, with its namespace added only where an evaluated model has the same name.
MODEL_LABEL = """CASE WHEN namespace <> '' AND EXISTS (SELECT 1 FROM models o WHERE o.namespace = '' AND o.name = models.name)
    THEN name || ' [' || namespace || ']' ELSE name END"""

SCHEMA_VERSION = 4


def _leaderboard(runs_counted: str) -> str:
    """One row per (model, task version, settings, item limit): the primary metric of the finished run that covers
    the most items, among the runs `runs_counted` admits. Choosing among them, and refusing what cannot be
    compared, is harness.tables' job."""
    return f"""CREATE OR REPLACE VIEW leaderboard AS
            SELECT m.label AS model, t.name AS task, t.version AS task_version, t.config_hash, r.settings, s.metric,
                   s.value, s.stderr, s.n, t.higher_is_better, r.run_id, r.item_limit
            FROM scores s JOIN (SELECT *, {RUN_SETTINGS} AS settings FROM runs) r USING (run_id)
            JOIN (SELECT *, {MODEL_LABEL} AS label FROM models) m USING (model_id) JOIN tasks t USING (task_id)
            WHERE r.status = 'done' AND s.metric = t.primary_metric AND {runs_counted}
            QUALIFY row_number() OVER (PARTITION BY m.label, t.name, t.config_hash, r.settings, r.item_limit
                                       ORDER BY s.n DESC, r.finished_at DESC) = 1"""


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
    [
        # Model names are unique per namespace: '' for models evaluated here, 'lm-eval' for imported output, so an
        # import never blocks evaluating a real model of the same name. weights_sha256 is NULL for rows written
        # before the fingerprint covered config, generation config, tokenizer and chat template files.
        "DROP VIEW leaderboard",
        """CREATE TABLE models_v3 (
            model_id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, namespace VARCHAR NOT NULL DEFAULT '',
            kind VARCHAR NOT NULL, source VARCHAR, fingerprint VARCHAR NOT NULL, weights_sha256 VARCHAR,
            n_params BIGINT, parents VARCHAR[], recipe JSON, created_at TIMESTAMPTZ, UNIQUE (namespace, name))""",
        """INSERT INTO models_v3 (model_id, name, namespace, kind, source, fingerprint, n_params, parents, recipe,
                                 created_at)
           SELECT model_id, name, CASE WHEN kind = 'external' THEN 'lm-eval' ELSE '' END, kind, source, fingerprint,
                  n_params, parents, recipe, created_at FROM models""",
        "DROP TABLE models",
        "ALTER TABLE models_v3 RENAME TO models",
        # Answers are shared by every run with the same answer_scope (model fingerprint and the settings that change
        # an answer); runs from before v3 keep their answers to themselves.
        "ALTER TABLE runs ADD COLUMN answer_scope VARCHAR",
        "UPDATE runs SET answer_scope = run_id",
        # Prompt and continuation text, content-addressed, so every stored answer can be read back.
        "CREATE TABLE texts (text_sha VARCHAR PRIMARY KEY, text VARCHAR NOT NULL)",
        "ALTER TABLE requests ADD COLUMN context_sha VARCHAR",
        "ALTER TABLE requests ADD COLUMN continuation_sha VARCHAR",
        # Saved rankings (`harness rank --save NAME`): what was ranked, how, and by which command.
        "ALTER TABLE rankings ADD COLUMN name VARCHAR",
        "ALTER TABLE rankings ADD COLUMN command VARCHAR",
        _leaderboard("true"),
    ],
    [
        # Item response models (`harness irt fit`): one fit per task, with its provenance (the per-item import or
        # the evaluated runs it was fitted on, the competitors, the seed, when), its items' parameters and the
        # abilities of the competitors it saw. P(score) = sigmoid(discrimination * (ability - difficulty)).
        """CREATE TABLE irt_fits (
            fit_id VARCHAR PRIMARY KEY, task VARCHAR NOT NULL, model VARCHAR NOT NULL, source VARCHAR,
            run_ids VARCHAR[], seed INTEGER NOT NULL, n_competitors INTEGER, n_items INTEGER, converged BOOLEAN,
            n_iter INTEGER, objective DOUBLE, created_at TIMESTAMPTZ)""",
        """CREATE TABLE irt_items (
            fit_id VARCHAR NOT NULL, item VARCHAR NOT NULL, difficulty DOUBLE, discrimination DOUBLE,
            PRIMARY KEY (fit_id, item))""",
        """CREATE TABLE irt_abilities (
            fit_id VARCHAR NOT NULL, competitor VARCHAR NOT NULL, ability DOUBLE, PRIMARY KEY (fit_id, competitor))""",
        # "source" names an import (external_scores, irt_fits); where a model's weights and a task's definition
        # came from is their origin.
        "ALTER TABLE models RENAME COLUMN source TO origin",
        "ALTER TABLE tasks RENAME COLUMN source TO origin",
        # Runs over chosen items (`eval --adaptive`) are partial by design: what they stand for is an estimate of the
        # full task score, stored with its standard error, the items and the method; the leaderboard leaves them out.
        _leaderboard("r.backend_args->>'items' IS NULL"),
        """CREATE TABLE estimates (
            estimate_id VARCHAR PRIMARY KEY, model_id VARCHAR NOT NULL, task_id VARCHAR NOT NULL,
            run_id VARCHAR NOT NULL, metric VARCHAR NOT NULL, method VARCHAR NOT NULL, fit_id VARCHAR,
            estimate DOUBLE, stderr DOUBLE, n_items INTEGER, items INTEGER[], budget INTEGER, target_se DOUBLE,
            seed INTEGER, created_at TIMESTAMPTZ)""",
    ],
]
