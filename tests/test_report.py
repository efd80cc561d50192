"""`harness report`: a self-contained page that parses, renders in headless Chromium, and treats
every name as text."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.store import ModelRecord, Store
from tests.test_cli import one_line_error, store_items
from tests.test_hpo_cli import STUDY as TINY_STUDY  # 3 optimizers x 5 tasks: enough for Friedman

runner = CliRunner()
EVIL = "<script>alert(1)</script>"
MODEL_SECTIONS = ("leaderboard", "csd", "cd", "heatmap", "snr", "variants")
HPO_SECTIONS = ("hpo-ranking", "hpo-anytime", "hpo-profile")


def _seed_models(path: Path) -> None:
    """Five models (one with a hostile name, one a 50%-sparse variant) with per-item results on four tasks."""
    rng = np.random.default_rng(3)
    skill = {"alpha": 0.85, "beta": 0.7, EVIL: 0.6, "gamma": 0.45, "alpha-pruned": 0.65}
    per_model = {m: {t: (rng.random(200) < min(0.95, p + d)).astype(float)
                     for t, d in (("arith", 0.0), ("facts", 0.05), ("words", -0.1), ("seq", 0.02))}
                 for m, p in skill.items()}
    store_items(path, per_model)
    with Store.open(path) as store:  # make alpha-pruned a registered variant of alpha
        store.con.execute("DELETE FROM models WHERE name = 'alpha-pruned'")
        store.register_model(ModelRecord("id-alpha-pruned", "alpha-pruned", "variant", "test", "fp-pruned" * 8, 5,
                                         parents=("id-alpha",), recipe={"method": "wanda", "achieved_sparsity": 0.5}))


def _report(db: Path, out: Path, *extra: str) -> Path:
    result = runner.invoke(app, ["report", "--db", str(db), "--out", str(out), "--n-boot", "50", *extra])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def report_db(tmp_path_factory) -> Path:
    """Models only: no HPO trials."""
    path = tmp_path_factory.mktemp("report") / "h.duckdb"
    _seed_models(path)
    return path


@pytest.fixture(scope="module")
def hpo_db(tmp_path_factory) -> Path:
    """HPO trials only, from a real (tiny) `harness hpo run`."""
    folder = tmp_path_factory.mktemp("hpo")
    (folder / "tiny.toml").write_text(TINY_STUDY)
    path = folder / "hpo.duckdb"
    result = runner.invoke(app, ["hpo", "run", str(folder / "tiny.toml"), "--db", str(path), "--quiet"])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="module")
def full_db(hpo_db, tmp_path_factory) -> Path:
    """The models of `report_db` and the trials of `hpo_db` in one store."""
    path = tmp_path_factory.mktemp("full") / "h.duckdb"
    shutil.copyfile(hpo_db, path)
    _seed_models(path)
    return path


@pytest.fixture(scope="module")
def report_html(full_db, tmp_path_factory) -> Path:
    return _report(full_db, tmp_path_factory.mktemp("out") / "report.html", "--md")


@pytest.fixture(scope="module")
def plain_html(report_db, tmp_path_factory) -> Path:
    return _report(report_db, tmp_path_factory.mktemp("plain") / "report.html")


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.ids, self.text, self.urls = [], set(), [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name == "id":
                self.ids.add(value)
            if name in ("src", "href") and value and not value.startswith("data:"):
                self.urls.append(value)

    def handle_data(self, data):
        self.text.append(data)


def _parse(path: Path) -> _Collector:
    parser = _Collector()
    parser.feed(path.read_text())
    parser.close()
    return parser


def test_report_parses_with_every_section_and_no_network(report_html):
    html = report_html.read_text()
    parser = _parse(report_html)
    assert set(MODEL_SECTIONS + HPO_SECTIONS) <= parser.ids
    assert "script" not in parser.tags  # the hostile model name stayed text
    text = "".join(parser.text)
    assert EVIL in text
    assert parser.urls == [] and not re.search(r"https?://", html)
    # rank confidence, CSD profile and scatter, CD, heatmap, SNR, sparsity curve; optimizer CD, anytime, profile
    assert parser.tags.count("img") == parser.tags.count("figcaption") >= 10
    for method in ("mwr", "bt", "elo", "openskill", "csd"):  # every method's rank sits beside its interval
        assert re.search(rf"<th>{method}</th>", html)
    assert re.search(r"<td>\d+ \(\d+–\d+\)</td>", html)
    for optimizer in ("random", "optuna-tpe", "optuna-cmaes"):
        assert f"<td>{optimizer}</td>" in html
    assert "study tiny" in text and "Friedman p =" in text
    markdown = report_html.with_suffix(".md").read_text()
    assert "## Variants against their parents" in markdown and "&lt;script&gt;" in markdown
    assert "## Optimizer ranking" in markdown and "Performance profile of study tiny" in markdown


def test_report_without_hpo_trials_has_no_optimizer_sections(plain_html):
    parser = _parse(plain_html)
    assert set(MODEL_SECTIONS) <= parser.ids and not parser.ids & set(HPO_SECTIONS)
    assert "hpo study" not in plain_html.read_text()


def test_report_of_hpo_trials_alone(hpo_db, tmp_path):
    parser = _parse(_report(hpo_db, tmp_path / "r.html"))
    assert parser.ids == set(HPO_SECTIONS)
    empty = tmp_path / "empty.duckdb"
    Store.open(empty).close()
    result = runner.invoke(app, ["report", "--db", str(empty), "--out", str(tmp_path / "e.html")])
    one_line_error(result, str(empty), "nothing to report")
    assert not (tmp_path / "e.html").exists()


def test_report_footer_has_provenance(report_html, full_db):
    html = report_html.read_text()
    assert str(full_db) in html and "schema version" in html and "package duckdb" in html
    assert "fp-alpha" in html  # model fingerprints are listed as input hashes
    trials = re.search(r"<th>hpo study tiny</th><td><code>(\d+) trials, 3 optimizers, 5 tasks, sha256 ([0-9a-f]{64})",
                       html)
    assert trials and int(trials.group(1)) == 3 * 5 * 2 * 8


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is required (make test installs it)"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0"]
    return subprocess.run([chromium, *flags, *args], capture_output=True, text=True, timeout=120)


def _dom(page: Path, profile: Path) -> str:
    """The page as Chromium built it, after checking it logged no console error."""
    dom = _chromium("--dump-dom", page.as_uri(), profile=profile)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console_errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and "rror" in line]
    assert console_errors == []
    return dom.stdout


def test_report_renders_in_headless_chromium(report_html, plain_html, tmp_path):
    shot = tmp_path / "shot.png"
    taken = _chromium(f"--screenshot={shot}", "--window-size=1200,2400", report_html.as_uri(),
                      profile=tmp_path / "profile")
    assert shot.is_file() and shot.stat().st_size > 10_000, taken.stderr[-2000:]
    dom = _dom(report_html, tmp_path / "profile")
    for key in MODEL_SECTIONS + HPO_SECTIONS:
        assert f'id="{key}"' in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and "<script>alert" not in dom
    plain = _dom(plain_html, tmp_path / "profile")
    assert all(f'id="{key}"' in plain for key in MODEL_SECTIONS)
    assert not any(f'id="{key}"' in plain for key in HPO_SECTIONS)


# Reads, once the page has loaded, where each table's box and the table inside it end, and the page's own width.
_MEASURE = """<script>
window.addEventListener("load", function () {
  var rows = ["page " + document.documentElement.clientWidth + " " + document.documentElement.scrollWidth];
  document.querySelectorAll("table").forEach(function (t) {
    var box = t.parentElement, caption = t.querySelector("caption");
    rows.push("table " + Math.ceil(box.getBoundingClientRect().right) + " " + t.scrollWidth + " " + box.clientWidth
              + " " + (caption ? caption.textContent : ""));
  });
  var marker = document.createElement("pre");
  marker.id = "layout-measured";
  marker.textContent = rows.join("\\n");
  document.body.appendChild(marker);
});
</script>"""
DEMO_MODELS = ("smollm2-135m", "smollm2-magnitude30", "smollm2-magnitude50", "smollm2-wanda30", "smollm2-wanda50",
               "smollm2-wanda-2of4", "smollm2-drop4", "smollm2-mlp80")
DEMO_TASKS = ("arith_add_2d", "arith_mixed_3d", "compare_numbers", "compare_yes_no", "english_flores",
              "facts_capitals", "facts_elements", "seq_next", "words_antonyms", "words_forms")


def test_ten_task_tables_fit_a_1400_pixel_window(tmp_path):
    """make demo's shape (8 models, 7 of them variants, on 10 tasks) in a 1400-pixel-wide Chromium window: the page
    does not scroll sideways, every table's box ends inside the window, and the per-task tables (scores, delta vs
    parent) show every column without scrolling (their last columns were cut off: the page was 1761 pixels wide)."""
    rng = np.random.default_rng(5)
    db = tmp_path / "h.duckdb"
    store_items(db, {m: {t: (rng.random(20) < 0.5).astype(float) for t in DEMO_TASKS} for m in DEMO_MODELS})
    with Store.open(db) as store:
        for name in DEMO_MODELS[1:]:
            store.con.execute("DELETE FROM models WHERE name = ?", [name])
            store.register_model(ModelRecord(f"id-{name}", name, "variant", "test", f"fp-{name}" * 8, 5,
                                             parents=("id-smollm2-135m",), recipe={"method": "wanda"}))
    page = _report(db, tmp_path / "report.html")
    measured = tmp_path / "measured.html"
    measured.write_text(page.read_text().replace("</body>", _MEASURE + "</body>"))
    dom = _chromium("--dump-dom", "--window-size=1400,1000", measured.as_uri(), profile=tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="layout-measured">(.*?)</pre>', dom.stdout, re.S)
    assert found, dom.stdout[-2000:]
    (_, view, page_width), *tables = [line.split(" ", 4) if line.startswith("table") else line.split(" ")
                                      for line in found.group(1).splitlines()]
    assert int(page_width) <= int(view), f"the page is {page_width} px wide in a {view} px window"
    captions = {caption for *_, caption in tables}
    assert {"scores", "delta vs parent"} <= captions
    for _, right, table_width, box_width, caption in tables:
        assert int(right) <= int(view), f"table {caption!r} ends at {right} px, past the {view} px window"
        if caption in ("scores", "delta vs parent"):
            assert int(table_width) <= int(box_width), f"table {caption!r} hides columns ({table_width} > {box_width})"
    html = page.read_text()
    assert "arith_<wbr>mixed_<wbr>3d" in html  # names wrap after an underscore, whole when copied


def test_rank_groups_variants_under_their_parent(report_db):
    import json

    result = runner.invoke(app, ["rank", "--db", str(report_db), "--method", "mean", "--variants", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    names = [row["competitor"] for row in rows]
    assert names.index("alpha-pruned") == names.index("alpha") + 1  # right after its parent
    pruned = rows[names.index("alpha-pruned")]
    alpha = rows[names.index("alpha")]
    assert pruned["parent"] == "alpha" and alpha["parent"] == ""
    assert pruned["Δ mean vs parent"] == pytest.approx(pruned["mean"] - alpha["mean"])


class _Tables(HTMLParser):
    """Every <table> of one section (by its id), as lists of rows of cell texts."""

    def __init__(self, section: str):
        super().__init__()
        self.section, self.inside, self.tables, self.cell = section, 0, [], None

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.inside = self.inside + 1 if self.inside or dict(attrs).get("id") == self.section else 0
        elif self.inside and tag == "table":
            self.tables.append([])
        elif self.inside and tag == "tr":
            self.tables[-1].append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "section" and self.inside:
            self.inside -= 1
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def test_report_ranks_are_the_stores_numbers(report_html, full_db):
    """The leaderboard's mean and MWR ranks, recomputed here from the per-item values in the store (per-task means
    by SQL; HELM mean win rate by its definition: per task, the share of other models scored lower, ties half),
    are the ranks the page prints."""
    parser = _Tables("leaderboard")
    parser.feed(report_html.read_text())
    header, *rows = parser.tables[0]
    printed = {row[0]: {method: int(cell.split()[0]) for method, cell in zip(header[1:], row[1:])} for row in rows}
    with Store.open(full_db, read_only=True) as store:
        means = store.query("""SELECT m.name AS model, t.name AS task, avg(s.value) AS acc FROM samples s
                               JOIN runs USING (run_id) JOIN models m USING (model_id) JOIN tasks t USING (task_id)
                               WHERE s.metric = 'acc' GROUP BY ALL""").pivot(index="model", columns="task",
                                                                              values="acc")
    assert set(printed) == set(means.index) and len(printed) == 5
    x = means.to_numpy()
    beats = (x[:, None, :] > x[None, :, :]) + 0.5 * (x[:, None, :] == x[None, :, :])
    np.einsum("iit->it", beats)[:] = 0  # a model does not play itself
    expected = {"mwr": beats.sum(axis=1).mean(axis=1) / (len(x) - 1), "mean": x.mean(axis=1)}
    for method, scores in expected.items():
        ranks = 1 + (scores[None, :] > scores[:, None]).sum(axis=1)  # ties share the best rank
        assert {model: printed[model][method] for model in means.index} == dict(zip(means.index, ranks)), method
