"""Safe defaults, each with a test that fails if the default is weakened: no checkpoint code without
--trust-remote-code, no pickle weights without --allow-pickle, no path built from a name that could
leave its folder, schema migration with a byte-exact backup, and a clear refusal (or a bounded wait)
when another process holds the database."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

import harness.store.schema as store_module
from harness.cli import app
from harness.common.errors import HarnessError
from harness.common.paths import child, file_stem, is_plain, plain_name, sibling
from harness.store import SCHEMA_VERSION, Store
from harness.weights.trust import LoadPolicy, check_model_folder
from tests.test_cli import digest, fill_store, one_line_error

runner = CliRunner()
BAD_NAMES = ["../../x", "a/b", "a\nb", "a\x00b", ".hidden", "..", "x" * 201]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# ---------------------------------------------------------------------------- checkpoints
@pytest.fixture()
def remote_code_model(tmp_path, tiny_model) -> tuple[Path, Path]:
    """The tiny model plus an auto_map pointing at its own modelling file, which leaves a mark when run."""
    folder = tmp_path / "remote"
    shutil.copytree(tiny_model, folder)
    mark = tmp_path / "remote-code-ran"
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_marked.MarkedLlama"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_marked.py").write_text(
        "from pathlib import Path\n\nfrom transformers import LlamaForCausalLM\n\n"
        f"Path({str(mark)!r}).write_text('ran')\n\n\nclass MarkedLlama(LlamaForCausalLM):\n    pass\n")
    return folder, mark


@pytest.fixture(scope="module")
def pickle_model(tmp_path_factory, tiny_model) -> Path:
    """The tiny model with its weights as pytorch_model.bin (a pickle), as older checkpoints ship them."""
    import torch
    from safetensors.torch import load_file

    folder = tmp_path_factory.mktemp("pickled") / "pickled"
    shutil.copytree(tiny_model, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    torch.save(load_file(tiny_model / "model.safetensors"), folder / "pytorch_model.bin")
    return folder


def eval_args(model: Path | str, *extra: str) -> list[str]:
    return ["eval", "--models", str(model), "--tasks", "seq_next", "--limit", "4", "--display", "none", *extra]


def test_remote_code_is_refused_unless_trusted(remote_code_model, results_env, tmp_path, monkeypatch):
    folder, mark = remote_code_model
    db = results_env / "harness.duckdb"
    refused = runner.invoke(app, eval_args(folder))
    one_line_error(refused, "model", "auto_map", "--trust-remote-code")
    assert not mark.exists() and not db.exists()

    import transformers.dynamic_module_utils as dynamic

    monkeypatch.setattr(dynamic, "HF_MODULES_CACHE", str(tmp_path / "hf-modules"))  # keep ~/.cache clean
    trusted = runner.invoke(app, eval_args(folder, "--trust-remote-code"))
    assert trusted.exit_code == 0, trusted.output
    assert mark.read_text() == "ran"  # the flag, and nothing else, let the checkpoint's code run
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT status FROM runs").fetchall() == [("done",)]


@pytest.mark.parametrize("setup,culprit", [
    (lambda f: (f / "tokenizer_config.json").write_text(json.dumps({"auto_map": {"AutoTokenizer": ["t.T", None]}})),
     "tokenizer_config.json asks for remote code"),
    (lambda f: (f / "helpers.py").write_text("import os\n"), "ships Python code (helpers.py)"),
])
def test_any_sign_of_remote_code_is_refused(tmp_path, tiny_model, setup, culprit):
    folder = tmp_path / "m"
    shutil.copytree(tiny_model, folder)
    setup(folder)
    with pytest.raises(HarnessError, match=r"--trust-remote-code") as caught:
        check_model_folder(folder, "model 'm'", LoadPolicy())
    assert culprit in str(caught.value)
    assert check_model_folder(folder, "model 'm'", LoadPolicy(trust_remote_code=True)) == "safetensors"


def test_remote_code_parent_is_refused_by_variants_make(remote_code_model, results_env, tmp_path):
    folder, mark = remote_code_model
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f"[[variant]]\nname = 'p'\nmethod = 'magnitude'\nparent = '{folder}'\nsparsity = 0.5\n")
    refused = runner.invoke(app, ["variants", "make", str(recipe), "--display", "none"])
    one_line_error(refused, "auto_map", "--trust-remote-code")
    assert not mark.exists() and not (results_env / "variants").exists() and not (results_env / "harness.duckdb").exists()


@pytest.mark.parametrize("name", ["model.pt", "weights.pth", "last.ckpt"])
def test_every_pickle_suffix_is_refused(tmp_path, tiny_model, name):
    folder = tmp_path / "m"
    shutil.copytree(tiny_model, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    (folder / name).write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(HarnessError, match=rf"pickle files \({name}\).*--allow-pickle"):
        check_model_folder(folder, "model 'm'", LoadPolicy())


def test_pickle_weights_are_refused_unless_allowed(pickle_model, tiny_model, results_env):
    from safetensors.torch import load_file

    db = results_env / "harness.duckdb"
    refused = runner.invoke(app, eval_args(pickle_model))
    one_line_error(refused, str(pickle_model), "pytorch_model.bin", "--allow-pickle")
    assert not db.exists() and not (results_env / "models").exists()

    allowed = runner.invoke(app, eval_args(pickle_model, "--allow-pickle"))
    assert allowed.exit_code == 0, allowed.output
    (converted,) = (results_env / "models").iterdir()
    assert converted.name.startswith("pickled-pickle-") and not list(converted.glob("*.bin"))
    original, loaded = load_file(tiny_model / "model.safetensors"), load_file(converted / "model.safetensors")
    assert original.keys() == loaded.keys() and all((original[k] == loaded[k]).all() for k in original)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT m.name, r.status FROM runs r JOIN models m USING (model_id)").fetchall() == [
            ("pickled", "done")]


def test_variant_of_a_pickle_parent_records_it(pickle_model, results_env, tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f"[[variant]]\nname = 'p30'\nmethod = 'magnitude'\nparent = '{pickle_model}'\nsparsity = 0.3\n"
                      "[[variant]]\nname = 'p30-p50'\nmethod = 'magnitude'\nparent = 'p30'\nsparsity = 0.5\n")
    refused = runner.invoke(app, ["variants", "make", str(recipe), "--display", "none"])
    one_line_error(refused, "pytorch_model.bin", "--allow-pickle")
    assert not (results_env / "variants").exists()

    made = runner.invoke(app, ["variants", "make", str(recipe), "--display", "none", "--allow-pickle"])
    assert made.exit_code == 0, made.output
    first = json.loads((results_env / "variants" / "p30" / "manifest.json").read_text())
    second = json.loads((results_env / "variants" / "p30-p50" / "manifest.json").read_text())
    assert first["allow_pickle"] is True and first["parents"][0]["weight_format"] == "pickle"
    assert first["parents"][0]["converted_from"] == str(pickle_model.resolve())
    assert second["allow_pickle"] is True and second["parents"][0]["weight_format"] == "safetensors"


# ---------------------------------------------------------------------------- names never become paths
def test_path_helpers_refuse_or_contain_every_bad_name(tmp_path):
    for name in BAD_NAMES:
        assert not is_plain(name)
        with pytest.raises(HarnessError) as caught:
            child(tmp_path, name, "variant")
        assert "\n" not in str(caught.value) and "\x00" not in str(caught.value)
        stem = file_stem(name)
        assert is_plain(stem) and (tmp_path / stem).parent == tmp_path
    assert len({file_stem(n) for n in ["a/b", "a_b", "a:b", "a b"]}) == 4  # sanitised, never merged
    assert plain_name("smollm2-135m.p50_2", "variant") == "smollm2-135m.p50_2"
    assert sibling(tmp_path, "samples_x_1.jsonl") == tmp_path / "samples_x_1.jsonl"
    assert all(sibling(tmp_path, f"samples_{t}_1.jsonl") is None for t in ["../../x", "a/b", "a\\b", "a\x00"])


@pytest.mark.parametrize("name", BAD_NAMES)
def test_recipe_name_cannot_escape_the_variants_folder(tmp_path, results_env, name):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f"[[variant]]\nname = {json.dumps(name)}\nmethod = 'magnitude'\nparent = 'x'\nsparsity = 0.5\n")
    before = tree(tmp_path)
    result = runner.invoke(app, ["variants", "make", str(recipe), "--display", "none"])
    one_line_error(result, "name", "letters, digits")
    assert tree(tmp_path) == before


def test_variant_lookup_never_leaves_the_variants_folder(tmp_path, results_env):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "manifest.json").write_text("{}")
    shown = runner.invoke(app, ["variants", "show", "../outside"])
    one_line_error(shown, "not found")
    evaluated = runner.invoke(app, ["eval", "--models", "x/../../outside", "--tasks", "seq_next"])
    one_line_error(evaluated, "no such folder")


def test_study_name_cannot_escape_the_results_folder(tmp_path, results_env):
    study = tmp_path / "study.toml"
    study.write_text("study = '../../x'\noptimizers = ['random']\ntasks = ['bbob-f1-d2']\nseeds = [0]\nn_trials = 2\n")
    before = tree(tmp_path)
    ran = runner.invoke(app, ["hpo", "run", str(study)])
    one_line_error(ran, str(study), "'../../x'", "file name")
    reported = runner.invoke(app, ["hpo", "report", "--study", "../../x"])
    one_line_error(reported, "--study", "file name")
    assert tree(tmp_path) == before


def test_imported_names_are_data_never_paths(tmp_path, results_env):
    names = ["../../evil", "a/b", "<script>alert(1)</script>", "nul\x00name", "ok"]
    csv = tmp_path / "board.csv"
    csv.write_text("model,b1,b2,b3\n" + "".join(f'"{n}",{0.1 * i},{0.2 + 0.1 * i},{0.9 - 0.1 * i}\n'
                                                  for i, n in enumerate(names)))
    db = results_env / "harness.duckdb"
    imported = runner.invoke(app, ["import", "csv", str(csv), "--wide", "--name", "board", "--db", str(db)])
    assert imported.exit_code == 0, imported.output
    with Store.open(db, read_only=True) as store:
        assert set(store.external_rows("board")["competitor"]) == set(names)
    before = tree(tmp_path)
    out = results_env / "report.html"
    reported = runner.invoke(app, ["report", "--source", "board", "--db", str(db), "--out", str(out), "--md"])
    assert reported.exit_code == 0, reported.output
    ranked = runner.invoke(app, ["rank", "--source", "board", "--db", str(db), "--format", "md"])
    assert ranked.exit_code == 0, ranked.output
    assert tree(tmp_path) - before == {"results/report.html", "results/report.md"}
    assert "<script>alert" not in out.read_text() and "&lt;script&gt;" in out.read_text()


# ---------------------------------------------------------------------------- query
@pytest.mark.parametrize("write", [False, True])
@pytest.mark.parametrize("sql", ["COPY (SELECT * FROM models) TO '{out}'", "ATTACH '{out}' AS other",
                                 "EXPORT DATABASE '{folder}'", "SELECT * FROM read_text('{secret}')",
                                 "SELECT * FROM glob('{folder}/../*')", "INSTALL spatial"])
def test_query_reaches_no_file_even_with_write(tmp_path, sql, write):
    """--write means changes to this store only: no file is read or written, no extension installed."""
    db, out, folder, secret = tmp_path / "h.duckdb", tmp_path / "leak.csv", tmp_path / "export", tmp_path / "s.txt"
    fill_store(db)
    secret.write_text("s3cr3t-b0dd")
    before = tree(tmp_path)
    refused = runner.invoke(app, ["query", sql.format(out=out, folder=folder, secret=secret), "--db", str(db),
                                  *(["--write"] if write else [])])
    one_line_error(refused, "query failed", "reaches no file but the store")
    assert "s3cr3t" not in refused.output and "h.duckdb" not in refused.stdout
    assert tree(tmp_path) == before


def test_query_write_never_creates_a_store(tmp_path):
    typo = tmp_path / "resluts" / "h.duckdb"
    result = runner.invoke(app, ["query", "CREATE TABLE t (x INT)", "--db", str(typo), "--write"])
    one_line_error(result, str(typo), "no such database", "never creates one")
    assert tree(tmp_path) == set()


# ---------------------------------------------------------------------------- schema versions
@pytest.fixture()
def v1_store(tmp_path) -> Path:
    path = tmp_path / "h.duckdb"
    fill_store(path)
    return path


def future_schema(monkeypatch, statements: list[str]) -> None:
    """Pretend this harness is one schema version ahead, with `statements` as the upgrade step."""
    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, statements])
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)


def test_older_store_is_migrated_after_a_byte_exact_backup(v1_store, monkeypatch):
    original = v1_store.read_bytes()
    future_schema(monkeypatch, ["ALTER TABLE models ADD COLUMN licence VARCHAR"])
    with Store.open(v1_store) as store:
        assert store.schema_version() == SCHEMA_VERSION + 1
        assert store.count("scores") == 8 and store.count("models") == 3
        assert "licence" in store.query("SELECT * FROM models").columns
    backup = v1_store.with_name(f"h.duckdb.v{SCHEMA_VERSION}.bak")
    assert backup.read_bytes() == original
    with duckdb.connect(str(backup), read_only=True) as con:  # the copy is a working old store
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    Store.open(v1_store).close()
    assert sorted(p.name for p in v1_store.parent.glob("*.bak")) == [backup.name]  # up to date: no new copy


def test_failed_migration_leaves_the_store_as_it_was(v1_store, monkeypatch):
    future_schema(monkeypatch, ["ALTER TABLE models ADD COLUMN licence VARCHAR", "ALTER TABLE nowhere ADD x INT"])
    with pytest.raises(HarnessError, match=rf"failed .*left at version {SCHEMA_VERSION}; a copy is at .*\.bak"):
        Store.open(v1_store)
    monkeypatch.undo()
    with Store.open(v1_store, read_only=True) as store:
        assert store.schema_version() == SCHEMA_VERSION and store.count("scores") == 8
        assert "licence" not in store.query("SELECT * FROM models").columns


def test_newer_store_is_refused_and_left_byte_identical(v1_store):
    with duckdb.connect(str(v1_store)) as con:
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    before = digest(v1_store)
    for args in (["rank"], ["query", "SELECT 1", "--write"], ["models", "list"]):
        result = runner.invoke(app, [*args, "--db", str(v1_store)])
        assert result.exit_code != 0
    result = runner.invoke(app, ["rank", "--db", str(v1_store)])
    one_line_error(result, str(v1_store), f"schema version {SCHEMA_VERSION + 1} is newer", "upgrade the harness")
    with pytest.raises(HarnessError, match="newer than this harness"):
        Store.open(v1_store)
    assert digest(v1_store) == before and not list(v1_store.parent.glob("*.bak"))


# ---------------------------------------------------------------------------- concurrency
def hold(path: Path) -> subprocess.Popen:
    """Another process holding the DuckDB lock until a line arrives on its stdin."""
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, sys; c = duckdb.connect({str(path)!r}); "
                               "print('ok', flush=True); sys.stdin.readline(); c.close()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ok"
    return holder


def test_busy_store_fails_at_once_or_waits_as_long_as_asked(tmp_path, monkeypatch):
    path = tmp_path / "h.duckdb"
    Store.open(path).close()
    holder = hold(path)
    try:
        with pytest.raises(HarnessError, match=rf"database is busy: .* another process \(pid {holder.pid}\)"):
            Store.open(path)
        started = time.monotonic()
        with pytest.raises(HarnessError, match=r"waited 0.5 s"):
            Store.open(path, read_only=True, busy_timeout=0.5)
        assert time.monotonic() - started >= 0.5
        monkeypatch.setenv("HARNESS_BUSY_TIMEOUT", "soon")
        with pytest.raises(HarnessError, match="HARNESS_BUSY_TIMEOUT='soon'"):
            Store.open(path)
        monkeypatch.setenv("HARNESS_BUSY_TIMEOUT", "60")
        opened: list[Store] = []
        waiter = threading.Thread(target=lambda: opened.append(Store.open(path)))
        waiter.start()
        time.sleep(0.5)
        assert waiter.is_alive()  # still waiting for the lock
        holder.communicate("\n", timeout=30)
        waiter.join(timeout=30)
        assert opened and opened[0].schema_version() == SCHEMA_VERSION
        opened[0].close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_two_harness_evals_on_one_store(tmp_path, tiny_model):
    """A second `harness eval` on a store another one is writing fails in one line naming it; one given
    --busy-timeout waits and then finds the work done; the store ends complete and uncorrupted."""
    db = tmp_path / "h.duckdb"
    env = {**os.environ, "HARNESS_RESULTS": str(tmp_path / "results"), "HARNESS_DB": str(db)}
    command = [sys.executable, "-m", "harness.cli", "eval", "--models", str(tiny_model), "--tasks", "arith_add_2d",
               "--limit", "40", "--chunk-size", "4", "--display", "plain", "--db", str(db)]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = first.stderr.readline()  # its first committed chunk: it holds the store now
        assert "requests" in line, line + first.stderr.read()
        first.send_signal(signal.SIGSTOP)  # keep it holding the lock, however fast this machine is
        assert first.poll() is None
        second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        waiter = subprocess.Popen([*command, "--busy-timeout", "600"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        _, error = second.communicate(timeout=300)
        assert second.returncode != 0
        lines = [line for line in error.splitlines() if line.strip()]
        assert len(lines) == 1 and "database is busy" in lines[0] and str(db) in lines[0], error
        assert f"another harness process (pid {first.pid})" in lines[0]
        assert waiter.poll() is None  # still waiting
        first.send_signal(signal.SIGCONT)
        first.communicate(timeout=300)
        assert first.returncode == 0
        waited, _ = waiter.communicate(timeout=300)
        assert waiter.returncode == 0 and "skipped" in waited
    finally:
        for process in (first, locals().get("second"), locals().get("waiter")):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait()
    with Store.open(db, read_only=True) as store:  # the schema check passes: a store, not a broken file
        con = store.con
        con.execute("SELECT * FROM requests").fetchall()  # every block read back (DuckDB checks its checksums)
        runs = con.execute("SELECT status, n_requests, n_computed FROM runs").fetchall()
        assert runs == [("done", 160, 160)]
        assert con.execute("SELECT count(*) FROM requests").fetchone() == (160,)
        assert con.execute("SELECT count(DISTINCT doc_id) FROM samples").fetchone() == (40,)
        assert con.execute("SELECT count(*) FROM scores WHERE metric = 'acc'").fetchone() == (1,)
