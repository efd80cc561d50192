"""`harness view` in a real browser: Debian's headless Chromium driven by Selenium through Debian's chromedriver
(nothing downloads a browser or driver). One store (a tiny model and its pruned variant really evaluated, a hostile
imported model, a hostile imported leaderboard, real HPO trials), one server process, one browser for the module;
what is on screen is checked against the store's numbers computed apart (SQL, or the ranker called directly)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from harness.cli import app

selenium = pytest.importorskip("selenium", reason="selenium is in the test extra (make install)")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CHROMEDRIVER = "/usr/bin/chromedriver"
TASKS = ("arith_add_2d", "compare_numbers")  # multiple choice: right or wrong per item
PPL = "english_flores"  # bits per byte, lower is better: a number per document
ALL = (*TASKS, PPL)
LIMIT = 12
HOSTILE = '<script>alert("x")</script>\x1b[31m"javascript:alert(1)'
HOSTILE_SHOWN = '<script>alert("x")</script>\\x1b[31m"javascript:alert(1)'  # as the page shows it: text, ESC escaped
BOARD_NAMES = ["javascript:alert(2)", "<img src=x onerror=alert(3)>", "\x1b]0;pwned\x07"]
RECIPE = """
[[variant]]
name = "tiny-mag50"
parent = "{tiny}"
method = "magnitude"
sparsity = 0.5
"""
STUDY = """
study = "tiny"
optimizers = ["random", "optuna-tpe"]
tasks = ["bbob-f1-d2", "bbob-f6-d2", "bbob-f8-d2"]
seeds = [0, 1]
n_trials = 6
"""


@pytest.fixture(scope="module")
def view_db(tiny_model, tmp_path_factory) -> Path:
    """The tiny model and a 50%-magnitude variant of it, evaluated for real on two MC tasks; a copy of the variant's
    runs under a hostile imported name; an imported leaderboard with hostile names; a small HPO study."""
    root = tmp_path_factory.mktemp("view")
    db = root / "h.duckdb"
    env = {"HARNESS_RESULTS": str(root / "results"), "HARNESS_DB": str(db)}
    runner = CliRunner()
    (root / "recipe.toml").write_text(RECIPE.format(tiny=tiny_model))
    (root / "study.toml").write_text(STUDY)
    for args in (["variants", "make", str(root / "recipe.toml"), "--display", "none"],
                 ["eval", "--models", f"{tiny_model},tiny-mag50", "--tasks", ",".join(ALL), "--limit", str(LIMIT),
                  "--display", "none"],
                 ["hpo", "run", str(root / "study.toml"), "--quiet"]):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
    con = duckdb.connect(str(db))
    try:  # an imported model (namespace lm-eval) whose name is hostile, answering as the variant did
        con.execute("""INSERT INTO models (model_id, name, namespace, kind, origin, fingerprint, n_params, parents)
                       SELECT 'id-hostile', ?, 'lm-eval', 'external', 'import', 'fp-hostile', n_params, []
                       FROM models WHERE name = 'tiny-mag50'""", [HOSTILE])
        runs = [r[0] for r in con.execute("SELECT run_id FROM runs JOIN models USING (model_id) "
                                          "WHERE name = 'tiny-mag50'").fetchall()]
        for run in runs:
            con.execute("INSERT INTO runs SELECT * REPLACE ('h-' || run_id AS run_id, 'id-hostile' AS model_id) "
                        "FROM runs WHERE run_id = ?", [run])
            for table in ("requests", "samples", "scores"):
                con.execute(f"INSERT INTO {table} SELECT * REPLACE ('h-' || run_id AS run_id) FROM {table} "
                            "WHERE run_id = ?", [run])
    finally:
        con.close()
    from harness.store import Store

    rows = [(name, bench, 0.1 * i + 0.01 * j) for i, name in enumerate(BOARD_NAMES + ["plain"])
            for j, bench in enumerate(["b1", HOSTILE])]
    with Store.open(db) as store:
        store.replace_external("board", pa.table({"competitor": [r[0] for r in rows],
                                                  "benchmark": [r[1] for r in rows],
                                                  "value": [r[2] for r in rows]}))
    return db


@pytest.fixture(scope="module")
def digest_before(view_db) -> str:
    return hashlib.sha256(view_db.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def server(view_db, digest_before):
    """`harness view --port 0` in its own process; the URL is the line it prints first."""
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "view", "--db", str(view_db), "--port", "0",
                             "--quiet"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        found = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
        assert found, line + proc.stderr.read() if proc.poll() is not None else line
        yield found.group(1).rstrip("/")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()


class Browser:
    """One headless Chromium for the module; every request it makes is kept from its performance log."""

    def __init__(self, profile: Path):
        os.environ["SE_OFFLINE"] = "true"  # Selenium Manager never looks anything up: the driver is given below
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if not chromium or not Path(CHROMEDRIVER).is_file():
            pytest.fail("Debian's chromium and chromium-driver are required (make browser installs them)")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-extensions", "--disable-default-apps", f"--user-data-dir={profile}",
                     "--window-size=1400,1000"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.requests: list[str] = []
        self.console: list[dict] = []

    def collect(self) -> None:
        import json

        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                self.requests.append(message["params"]["request"]["url"])
        self.console.extend(self.driver.get_log("browser"))

    def get(self, url: str):
        self.driver.get(url)
        self.collect()
        return self.driver

    def click(self, element) -> None:
        """Follow a link (or submit) and wait for the next page."""
        old = self.driver.find_element(By.TAG_NAME, "html")
        element.click()
        WebDriverWait(self.driver, 60).until(lambda d: _stale(old))
        self.collect()

    def rows(self, table_id: str) -> list[list[str]]:
        table = self.driver.find_element(By.ID, table_id)
        return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")]

    def headers(self, table_id: str) -> list[str]:
        table = self.driver.find_element(By.ID, table_id)
        return [th.text.removesuffix(" ▴").removesuffix(" ▾") for th in table.find_elements(By.CSS_SELECTOR, "thead th")]


def _stale(element) -> bool:
    try:
        element.is_enabled()
        return False
    except selenium.common.exceptions.StaleElementReferenceException:
        return True


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chrome = Browser(tmp_path_factory.mktemp("profile"))
    try:
        yield chrome
    finally:
        chrome.driver.quit()


def sql(db: Path, query: str, params=()) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(query, list(params)).fetchall()
    finally:
        con.close()


def fetch(url: str) -> tuple[int, str]:
    """(status, body) of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def column(rows, headers, name):
    return [row[headers.index(name)] for row in rows]


def ranked(db: Path, method: str, **params):
    """The ranking `harness rank` would print, computed here without the viewer."""
    from harness.api import scores
    from tournaments.methods import rank

    return rank(scores(db), method, **params)


def test_leaderboard_shows_the_stores_numbers(server, browser, view_db):
    driver = browser.get(server + "/")
    assert driver.title.startswith("Leaderboard")
    rows, headers = browser.rows("board"), browser.headers("board")
    models = column(rows, headers, "model")
    assert set(models) == {"tiny", "tiny-mag50", HOSTILE_SHOWN}
    expected = ranked(view_db, "mwr").to_frame()
    on_screen = {m: (int(r), float(s)) for m, r, s in zip(models, column(rows, headers, "rank"),
                                                        column(rows, headers, "mwr score"))}
    for rec in expected.itertuples():
        shown = HOSTILE_SHOWN if rec.competitor == HOSTILE else rec.competitor
        assert on_screen[shown] == (rec.rank, pytest.approx(rec.score, abs=1e-4))
    cells = sql(view_db, "SELECT model, task, value FROM leaderboard")
    assert len(cells) == 3 * len(ALL)
    for model, task, value in cells:
        row = rows[models.index(HOSTILE_SHOWN if model == HOSTILE else model)]
        index = [i for i, h in enumerate(headers) if h.startswith(task + " ")][0]
        assert float(row[index]) == pytest.approx(value, abs=1e-4)
    said = driver.find_element(By.CSS_SELECTOR, "ul.notes").text
    assert "3 models on 3 tasks" in said and "task version" in said


def test_sort_by_a_column_and_back(server, browser):
    browser.get(server + "/")
    browser.click(browser.driver.find_element(By.CSS_SELECTOR, 'a.sort[data-key="model"]'))
    names = column(browser.rows("board"), browser.headers("board"), "model")
    assert names == sorted(names) and "sort=model" in browser.driver.current_url
    browser.click(browser.driver.find_element(By.CSS_SELECTOR, 'a.sort[data-key="model"]'))
    assert column(browser.rows("board"), browser.headers("board"), "model") == sorted(names, reverse=True)
    browser.click(browser.driver.find_element(By.CSS_SELECTOR, 'a.sort[data-key="task:compare_numbers"]'))
    headers = browser.headers("board")
    values = [float(v) for v in column(browser.rows("board"), headers,
                                       next(h for h in headers if h.startswith("compare_numbers")))]
    assert values == sorted(values, reverse=True)  # higher is better: best first
    browser.click(browser.driver.find_element(By.CSS_SELECTOR, f'a.sort[data-key="task:{PPL}"]'))
    headers = browser.headers("board")
    ppl = next(h for h in headers if h.startswith(PPL))
    assert ppl == f"{PPL} ↓ ▴ →"  # lower is better: ascending, best first, and marked so
    values = [float(v) for v in column(browser.rows("board"), headers, ppl)]
    assert values == sorted(values)
    browser.click(browser.driver.find_element(By.CSS_SELECTOR, f'a.sort[data-key="task:{PPL}"]'))
    headers = browser.headers("board")
    ppl = next(h for h in headers if h.startswith(PPL))
    assert ppl == f"{PPL} ↓ ▾ →"  # clicked again: reversed
    assert [float(v) for v in column(browser.rows("board"), headers, ppl)] == sorted(values, reverse=True)


def test_switch_method_to_bt_and_csd_with_intervals(server, browser, view_db):
    browser.get(server + "/")
    Select(browser.driver.find_element(By.NAME, "method")).select_by_value("bt")
    browser.click(browser.driver.find_element(By.CSS_SELECTOR, "form button"))
    assert "method=bt" in browser.driver.current_url
    rows, headers = browser.rows("board"), browser.headers("board")
    expected = ranked(view_db, "bt").to_frame().set_index("competitor")
    for model, score in zip(column(rows, headers, "model"), column(rows, headers, "bt score")):
        name = HOSTILE if model == HOSTILE_SHOWN else model
        assert float(score) == pytest.approx(expected.at[name, "score"], abs=1e-4)
    browser.get(server + "/?method=csd")
    rows, headers = browser.rows("board"), browser.headers("board")
    from harness.view.snapshot import METHOD_PARAMS

    csd = ranked(view_db, "csd", **METHOD_PARAMS["csd"]).to_frame().set_index("competitor")
    assert len(browser.driver.find_elements(By.CSS_SELECTOR, "#board .bar .ci")) == len(rows) == 3
    for model, score, interval in zip(column(rows, headers, "model"), column(rows, headers, "csd score"),
                                      column(rows, headers, "95% interval")):
        name = HOSTILE if model == HOSTILE_SHOWN else model
        assert float(score) == pytest.approx(csd.at[name, "score"], abs=1e-4)
        low, high = (float(x) for x in interval.split("–"))
        assert (low, high) == (pytest.approx(csd.at[name, "ci_low"], abs=1e-3),
                               pytest.approx(csd.at[name, "ci_high"], abs=1e-3))


def test_rank_intervals_on_request_are_the_bootstrap_of_harness_report(server, browser, view_db):
    from functools import partial

    from harness.api import scores
    from harness.view.snapshot import RANK_BOOT
    from tournaments.methods import rank
    from tournaments.stats import bootstrap_ranking

    browser.get(server + "/")
    Select(browser.driver.find_element(By.NAME, "ri")).select_by_value("1")
    browser.click(browser.driver.find_element(By.CSS_SELECTOR, "form button"))
    rows, headers = browser.rows("board"), browser.headers("board")
    boot = bootstrap_ranking(scores(view_db, items=True), partial(rank, method="mwr"), n_boot=RANK_BOOT, seed=0)
    expected = boot.to_frame().set_index("competitor")
    assert "over items" in browser.driver.find_element(By.CSS_SELECTOR, "ul.notes").text
    for model, interval in zip(column(rows, headers, "model"), column(rows, headers, "rank interval")):
        name = HOSTILE if model == HOSTILE_SHOWN else model
        assert interval.endswith(f"{expected.at[name, 'rank_low']}–{expected.at[name, 'rank_high']}")


def test_filters_by_kind_name_and_task(server, browser, view_db):
    browser.get(server + "/")
    Select(browser.driver.find_element(By.NAME, "kind")).select_by_value("variant")
    browser.click(browser.driver.find_element(By.CSS_SELECTOR, "form button"))
    assert column(browser.rows("board"), browser.headers("board"), "model") == ["tiny-mag50"]
    browser.get(server + "/?kind=imported")
    assert column(browser.rows("board"), browser.headers("board"), "model") == [HOSTILE_SHOWN]
    browser.get(server + "/")
    browser.driver.find_element(By.NAME, "q").send_keys("TINY")
    browser.click(browser.driver.find_element(By.CSS_SELECTOR, "form button"))
    assert sorted(column(browser.rows("board"), browser.headers("board"), "model")) == ["tiny", "tiny-mag50"]
    browser.get(server + "/")
    browser.driver.find_element(By.NAME, "tasks").send_keys("compare_numbers")
    browser.click(browser.driver.find_element(By.CSS_SELECTOR, "form button"))
    headers = browser.headers("board")
    assert [h for h in headers if h.startswith(ALL)] == ["compare_numbers ↑ →"]
    from harness.api import scores
    from tournaments.methods import rank

    expected = rank(scores(view_db, tasks=["compare_numbers"]), "mwr").to_frame().set_index("competitor")
    for model, score in zip(column(browser.rows("board"), headers, "model"), column(browser.rows("board"), headers,
                                                                                    "mwr score")):
        assert float(score) == pytest.approx(expected.at[HOSTILE if model == HOSTILE_SHOWN else model, "score"])
    browser.get(server + "/?tasks=no_such_task")
    assert "neither an evaluated task nor a stored task group" in browser.driver.find_element(By.ID, "refused").text


def test_model_page_from_its_link(server, browser, view_db):
    browser.get(server + "/")
    browser.click(browser.driver.find_element(By.LINK_TEXT, "tiny"))
    assert browser.driver.title.startswith("Model tiny")
    rows, headers = browser.rows("scores"), browser.headers("scores")
    stored = dict(sql(view_db, "SELECT task, value FROM leaderboard WHERE model = 'tiny'"))
    assert {t: float(v) for t, v in zip(column(rows, headers, "task"), column(rows, headers, "score"))} == \
        {t: pytest.approx(v, abs=1e-4) for t, v in stored.items()}
    family = browser.driver.find_element(By.ID, "family").text
    assert "tiny-mag50" in family and "method magnitude" in family and "sparsity 50.0%" in family
    assert f"{len(ALL)} runs" in browser.driver.find_element(By.TAG_NAME, "body").text


def test_samples_page_and_wrong_filter(server, browser, view_db):
    browser.get(server + "/")
    row = [r for r in browser.driver.find_elements(By.CSS_SELECTOR, "#board tbody tr") if "tiny-mag50" in r.text][0]
    browser.click(row.find_element(By.CSS_SELECTOR, 'a.cell[href*="arith_add_2d"]'))
    assert browser.driver.title.startswith("Samples: tiny-mag50 on arith_add_2d")
    assert browser.driver.find_element(By.ID, "n-items").text == str(LIMIT)
    run = sql(view_db, """SELECT run_id FROM runs JOIN models USING (model_id) JOIN tasks t USING (task_id)
                          WHERE models.name = 'tiny-mag50' AND t.name = 'arith_add_2d'""")[0][0]
    logliks = sql(view_db, "SELECT idx, logprob FROM requests WHERE run_id = ? AND doc_id = 0 ORDER BY idx", [run])
    item = browser.driver.find_element(By.ID, "item-0")
    shown = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
             for tr in item.find_elements(By.CSS_SELECTOR, "table.choices tbody tr")]
    assert [(int(r[0]), float(r[2])) for r in shown] == [(i, pytest.approx(ll, abs=1e-4)) for i, ll in logliks]
    chosen = max(logliks, key=lambda r: (r[1], -r[0]))[0]
    assert "chosen" in shown[chosen][3]
    prompt = sql(view_db, "SELECT text FROM texts JOIN requests ON text_sha = context_sha WHERE run_id = ? "
                          "AND doc_id = 0 LIMIT 1", [run])[0][0]
    assert item.find_element(By.CSS_SELECTOR, "pre.prompt").text == prompt.strip()
    Select(browser.driver.find_element(By.NAME, "wrong")).select_by_value("1")
    browser.click(browser.driver.find_element(By.CSS_SELECTOR, "form button"))
    wrong = sql(view_db, "SELECT count(*) FROM samples WHERE run_id = ? AND metric = 'acc' AND value = 0", [run])[0][0]
    assert browser.driver.find_element(By.ID, "n-items").text == str(wrong)
    assert len(browser.driver.find_elements(By.CSS_SELECTOR, "section.item.wrong")) == wrong
    assert not browser.driver.find_elements(By.CSS_SELECTOR, "section.item.right")


def test_diff_page_with_the_paired_test(server, browser, view_db):
    browser.get(server + "/model?name=tiny")
    browser.click(browser.driver.find_element(By.CSS_SELECTOR, "#family a.diff"))
    assert browser.driver.title.startswith("Diff: tiny-mag50 vs tiny")
    rows, headers = browser.rows("compare"), browser.headers("compare")
    assert column(rows, headers, "task") == list(ALL)
    per_item = sql(view_db, """SELECT t.name, s.doc_id, m.name, s.value FROM samples s JOIN runs USING (run_id)
                               JOIN models m USING (model_id) JOIN tasks t USING (task_id)
                               WHERE s.metric = 'acc' AND m.name IN ('tiny', 'tiny-mag50')""")
    values = {(task, doc, model): value for task, doc, model, value in per_item}
    from tournaments.stats import compare_on_tasks

    pairs = {task: (np.array([values[(task, d, "tiny-mag50")] for d in range(LIMIT)]),
                    np.array([values[(task, d, "tiny")] for d in range(LIMIT)])) for task in TASKS}
    expected = compare_on_tasks(pairs, n_boot=2000, seed=0).set_index("task")
    for task, disagree, diff, p in zip(*(column(rows, headers, h) for h in ("task", "differ", "diff", "p"))):
        if task == PPL:
            continue
        differ = sum(values[(task, d, "tiny")] != values[(task, d, "tiny-mag50")] for d in range(LIMIT))
        assert int(disagree) == differ
        assert float(diff) == pytest.approx(expected.at[task, "diff"], abs=1e-4)
        assert float(p) == pytest.approx(expected.at[task, "p_value"], abs=1e-4)
    ppl = dict(zip(column(rows, headers, "task"), zip(column(rows, headers, "test"), column(rows, headers, "diff"))))
    bpb = dict(sql(view_db, """SELECT m.name, avg(s.value) FROM samples s JOIN runs USING (run_id)
                              JOIN models m USING (model_id) JOIN tasks t USING (task_id)
                              WHERE t.name = ? AND s.metric = t.primary_metric GROUP BY m.name""", [PPL]))
    assert ppl[PPL][0] == "paired_bootstrap"
    assert float(ppl[PPL][1]) == pytest.approx(bpb["tiny-mag50"] - bpb["tiny"], abs=1e-4)
    first = TASKS[0]
    differ = [d for d in range(LIMIT) if values[(first, d, "tiny")] != values[(first, d, "tiny-mag50")]]
    if differ:
        assert [int(r[0]) for r in browser.rows("disagree")] == differ


def test_task_page_snr_and_item_difficulty(server, browser, view_db):
    browser.get(server + "/")
    browser.click(browser.driver.find_element(By.CSS_SELECTOR, 'a.task[href*="compare_numbers"]'))
    assert browser.driver.title.startswith("Task compare_numbers")
    snr = {r[0]: r[1] for r in browser.rows("snr")}
    from harness.store import Store
    from harness.tables.snr import benchmark_snr

    with Store.open(view_db, read_only=True) as store:
        expected = benchmark_snr(store).set_index("benchmark")
    assert float(snr["snr"]) == pytest.approx(expected.at["compare_numbers", "snr"], abs=1e-4)
    shares = dict(sql(view_db, """SELECT s.doc_id, avg(s.value) FROM samples s JOIN runs USING (run_id)
                                  JOIN tasks t USING (task_id) WHERE t.name = 'compare_numbers' AND s.metric = 'acc'
                                  GROUP BY s.doc_id"""))
    rows = browser.rows("difficulty")
    assert len(rows) == LIMIT
    assert {int(r[0]): float(r[1]) for r in rows} == {d: pytest.approx(v, abs=1e-3) for d, v in shares.items()}
    assert [float(r[1]) for r in rows] == sorted(float(r[1]) for r in rows)  # hardest first


def test_optimizers_page(server, browser):
    browser.get(server + "/")
    browser.click(browser.driver.find_element(By.LINK_TEXT, "Optimizers"))
    rows, headers = browser.rows("optimizers"), browser.headers("optimizers")
    assert sorted(column(rows, headers, "optimizer")) == ["optuna-tpe", "random"]
    assert column(rows, headers, "rank") == ["1", "2"]


def test_hostile_names_are_text_on_every_page(server, browser):
    pages = ["/", "/?kind=imported", "/?source=board", "/?method=csd", "/tasks", "/task?name=arith_add_2d",
             "/model?" + urllib.parse.urlencode({"name": HOSTILE}),
             "/samples?" + urllib.parse.urlencode({"model": HOSTILE, "task": "arith_add_2d"}),
             "/diff?" + urllib.parse.urlencode({"a": HOSTILE, "b": "tiny"}),
             "/model?" + urllib.parse.urlencode({"name": HOSTILE + "x"})]  # a 404 page that names it
    for path in pages:
        driver = browser.get(server + path)
        assert driver.find_elements(By.TAG_NAME, "script") == [], path
        assert driver.find_elements(By.TAG_NAME, "img") == [], path
        for anchor in driver.find_elements(By.TAG_NAME, "a"):
            assert anchor.get_attribute("href").startswith(server + "/"), (path, anchor.get_attribute("href"))
        text = driver.find_element(By.TAG_NAME, "body").text
        assert "\x1b" not in text and "\x07" not in text, path
        raw = fetch(server + path)[1]
        assert "<script>alert" not in raw and "<img" not in raw and "\x1b" not in raw, path
        assert not re.search(r"""(href|src|action)=["']?\s*javascript:""", raw, re.I), path
    browser.get(server + "/model?" + urllib.parse.urlencode({"name": HOSTILE}))
    assert browser.driver.title.startswith("Model " + HOSTILE_SHOWN)
    browser.get(server + "/?source=board")
    names = column(browser.rows("board"), browser.headers("board"), "model")
    assert set(names) == {"javascript:alert(2)", "<img src=x onerror=alert(3)>", "\\x1b]0;pwned\\x07", "plain"}
    assert any(h.startswith(HOSTILE_SHOWN) for h in browser.headers("board"))


def test_unknown_pages_and_names_are_pages_not_tracebacks(server):
    for path, status, said in (("/nope", 404, "no page"), ("/model?name=ghost", 404, "not in this store"),
                               ("/samples?model=tiny&task=ghost", 404, "no finished run"),
                               ("/?method=nope", 200, "unknown ranking method")):
        code, body = fetch(server + path)
        assert code == status and said in body and "Traceback" not in body, (path, body[-500:])


def test_every_request_stayed_on_this_server_and_no_console_error(server, browser):
    browser.get(server + "/")
    network = [url for url in browser.requests if urllib.parse.urlsplit(url).scheme not in ("chrome", "data",
                                                                                         "chrome-untrusted", "about")]
    assert [url for url in network if not url.startswith(server + "/")] == []
    assert len(network) > 20
    assert [entry for entry in browser.console if entry["level"] == "SEVERE"
            and "404" not in entry["message"]] == []


def test_writes_are_refused_and_the_store_is_unchanged(server, view_db, digest_before):
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        request = urllib.request.Request(server + "/?method=mwr", data=b"x=1", method=method)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request)
        assert caught.value.code == 405 and caught.value.headers["Allow"] == "GET, HEAD"
    assert hashlib.sha256(view_db.read_bytes()).hexdigest() == digest_before


def test_a_store_held_by_a_writer_is_a_clear_page(server, browser, view_db):
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(60)", str(view_db)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        driver = browser.get(server + "/")
        busy = driver.find_element(By.ID, "busy").text
        assert "database is busy" in busy and f"pid {holder.pid}" in busy
        assert "Traceback" not in driver.page_source
    finally:
        holder.terminate()
        holder.wait(timeout=10)
        holder.stdout.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        driver = browser.get(server + "/")
        if driver.find_elements(By.ID, "board"):
            break
        time.sleep(0.5)
    assert driver.find_elements(By.ID, "board")


def test_a_few_tasks_of_the_cached_comparison_are_comparable_for_those_tasks(view_db):
    """The viewer answers a task filter from the whole store's comparison (comparable decides task by task); it must
    equal asking comparable for those tasks alone."""
    import pandas as pd

    from harness.store import Store
    from harness.tables.scores import comparable
    from harness.view.snapshot import Snapshot, stamp

    with Store.open(view_db, read_only=True) as store:
        mine = Snapshot(stamp(view_db)).comparable(store, ("compare_numbers",))
        direct = comparable(store, tasks=["compare_numbers"])
    pd.testing.assert_frame_equal(mine.rows.reset_index(drop=True), direct.rows.reset_index(drop=True))
    pd.testing.assert_frame_equal(mine.items.reset_index(drop=True), direct.items.reset_index(drop=True))
    assert mine.notes == direct.notes


def test_view_refuses_a_missing_store_in_one_line(tmp_path):
    result = CliRunner().invoke(app, ["view", "--db", str(tmp_path / "nope.duckdb"), "--port", "0"])
    assert result.exit_code == 2 and "no such database" in result.output
    assert not (tmp_path / "nope.duckdb").exists()
