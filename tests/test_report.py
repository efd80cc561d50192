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
from tests.test_cli import store_items

runner = CliRunner()
EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def report_db(tmp_path_factory) -> Path:
    """Five models (one with a hostile name, one a 50%-sparse variant) with per-item results on four tasks."""
    rng = np.random.default_rng(3)
    skill = {"alpha": 0.85, "beta": 0.7, EVIL: 0.6, "gamma": 0.45, "alpha-pruned": 0.65}
    per_model = {m: {t: (rng.random(200) < min(0.95, p + d)).astype(float)
                     for t, d in (("arith", 0.0), ("facts", 0.05), ("words", -0.1), ("seq", 0.02))}
                 for m, p in skill.items()}
    path = tmp_path_factory.mktemp("report") / "h.duckdb"
    store_items(path, per_model)
    with Store.open(path) as store:  # make alpha-pruned a registered variant of alpha
        store.con.execute("DELETE FROM models WHERE name = 'alpha-pruned'")
        store.register_model(ModelRecord("id-alpha-pruned", "alpha-pruned", "variant", "test", "fp-pruned" * 8, 5,
                                         parents=("id-alpha",), recipe={"method": "wanda", "achieved_sparsity": 0.5}))
    return path


@pytest.fixture(scope="module")
def report_html(report_db, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "report.html"
    result = runner.invoke(app, ["report", "--db", str(report_db), "--out", str(out), "--md"])
    assert result.exit_code == 0, result.output
    return out


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


def test_report_parses_with_every_section_and_no_network(report_html):
    html = report_html.read_text()
    parser = _Collector()
    parser.feed(html)
    parser.close()
    assert {"leaderboard", "csd", "cd", "heatmap", "snr", "variants"} <= parser.ids
    assert "script" not in parser.tags  # the hostile model name stayed text
    assert EVIL in "".join(parser.text)
    assert parser.urls == [] and not re.search(r"https?://", html)
    assert parser.tags.count("img") >= 6
    markdown = report_html.with_suffix(".md").read_text()
    assert "## Variants against their parents" in markdown and "&lt;script&gt;" in markdown


def test_report_footer_has_provenance(report_html, report_db):
    html = report_html.read_text()
    assert str(report_db) in html and "schema version" in html and "package duckdb" in html
    assert "fp-alpha" in html  # model fingerprints are listed as input hashes


def test_report_renders_in_headless_chromium(report_html, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is required (make test installs it)"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
    shot = tmp_path / "shot.png"
    taken = subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1200,2400",
                            report_html.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000, taken.stderr[-2000:]
    dom = subprocess.run([chromium, *flags, "--dump-dom", report_html.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console_errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and "rror" in line]
    assert console_errors == []
    for key in ("leaderboard", "csd", "cd", "heatmap", "snr", "variants"):
        assert f'id="{key}"' in dom.stdout
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom.stdout and "<script>alert" not in dom.stdout


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
