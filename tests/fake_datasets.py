"""Small made-up rows in a real dataset's schema, written where `datasets` looks offline: its prepared cache.

With HF_DATASETS_OFFLINE=1, load_dataset("org/name", "config") reads `<cache>/org___name/<config>/<version>/<hash>/`
(dataset_info.json whose config_name equals the config folder, and `<name>-<split>.arrow`), so lm-eval's own task
YAMLs run unmodified on these rows (see ../shared/reference/lm_eval_tasks.md). Run in a subprocess whose
HF_DATASETS_CACHE points at `cache`, since `datasets` reads that variable at import.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path


def write_prepared(cache: Path, path: str, config: str | None, splits: dict[str, list[dict]]) -> Path:
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets.naming import camelcase_to_snakecase

    namespace, _, name = path.rpartition("/")
    snake = camelcase_to_snakecase(name)
    config_name = config or "default"
    with tempfile.TemporaryDirectory() as work:
        files = {}
        for split, rows in splits.items():
            files[split] = str(Path(work) / f"{split}.parquet")
            pq.write_table(pa.Table.from_pylist(rows), files[split])
        builder = datasets.load_dataset_builder("parquet", data_files=files, cache_dir=str(Path(work) / "build"))
        builder.download_and_prepare()
        prepared = Path(builder.cache_dir)
        target = cache / "___".join(filter(None, [namespace, snake])) / config_name / "0.0.0" / prepared.name
        shutil.copytree(prepared, target, dirs_exist_ok=True)
    info_file = target / "dataset_info.json"
    info = json.loads(info_file.read_text())
    info.update(config_name=config_name, dataset_name=snake)
    info_file.write_text(json.dumps(info))
    for arrow in target.glob("parquet-*.arrow"):
        arrow.rename(target / arrow.name.replace("parquet-", f"{snake}-", 1))
    for lock in target.parent.glob("*.lock"):
        lock.unlink()
    return target


def arc_rows(n: int) -> list[dict]:
    return [{"id": f"q{i}", "question": f"Which number is {i} plus one?",
             "choices": {"text": [str(i + 1), str(i + 7), "a tree", "blue water"], "label": ["A", "B", "C", "D"]},
             "answerKey": "ABCD"[i % 4]} for i in range(n)]


def hellaswag_rows(n: int) -> list[dict]:
    return [{"ind": i, "activity_label": "Cooking", "ctx_a": f"A man puts {i} eggs in a pan.", "ctx_b": "then he",
             "ctx": f"A man puts {i} eggs in a pan. then he", "endings": [
                 "cooks them [title] slowly.", "sings a song.", "walks away.", "paints the wall."],
             "source_id": f"s{i}", "split": "val", "split_type": "indomain", "label": str(i % 4)} for i in range(n)]


def gsm8k_rows(n: int) -> list[dict]:
    return [{"question": f"Tom has {i} apples and buys {i + 2} more. How many apples does he have?",
             "answer": f"He has {i} + {i + 2} = {2 * i + 2} apples.\n#### {2 * i + 2}"} for i in range(n)]


def wmdp_rows(n: int, topic: str) -> list[dict]:
    return [{"question": f"A {topic} question number {i}?", "choices": ["first", "second", "third", "fourth"],
             "answer": i % 4} for i in range(n)]


IFEVAL_KWARGS = ("num_words", "relation", "num_bullets", "num_sentences")
# Instructions whose checks need no nltk data (punkt_tab is a download, which tests never make), and one that does.
IFEVAL_OFFLINE = (["punctuation:no_comma"], ["length_constraints:number_words", "change_case:english_lowercase"],
                  ["detectable_format:number_bullet_lists", "punctuation:no_comma"])
IFEVAL_NEEDS_PUNKT = (["length_constraints:number_sentences"],)
IFEVAL_ARGS = {"length_constraints:number_words": {"num_words": 40, "relation": "less than"},
               "detectable_format:number_bullet_lists": {"num_bullets": 2},
               "length_constraints:number_sentences": {"num_sentences": 3, "relation": "at least"}}


def ifeval_rows(instructions: tuple[list[str], ...]) -> list[dict]:
    """google/IFEval's schema: kwargs is one dict per instruction, every key present (None where unused)."""
    return [{"key": 1000 + i, "prompt": f"Write a short note number {i} about apples.", "instruction_id_list": ids,
             "kwargs": [{k: IFEVAL_ARGS.get(name, {}).get(k) for k in IFEVAL_KWARGS} for name in ids]}
            for i, ids in enumerate(instructions)]


def mmlu_subjects() -> list[str]:
    """The 57 subjects, read from lm-eval's own mmlu/default YAMLs (each names its subject as dataset_name)."""
    import re

    import lm_eval.tasks

    folder = Path(lm_eval.tasks.__file__).parent / "mmlu" / "default"
    return sorted(re.search(r'"dataset_name": "(\w+)"', f.read_text()).group(1) for f in folder.glob("mmlu_*.yaml"))


def mmlu_rows(n: int, subject: str) -> list[dict]:
    return [{"question": f"In {subject.replace('_', ' ')}, which option is number {i % 4 + 1}?", "subject": subject,
             "choices": ["one", "two", "three", "four"], "answer": i % 4} for i in range(n)]


def write_mmlu(cache: Path) -> None:
    """cais/mmlu, one config per subject: a dev row for few-shot and 3 to 6 test rows (sizes differ by subject)."""
    for k, subject in enumerate(mmlu_subjects()):
        write_prepared(cache, "cais/mmlu", subject, {"test": mmlu_rows(3 + k % 4, subject), "dev": mmlu_rows(1, subject)})


def write_all(cache: Path) -> None:
    """The datasets of arc_easy, hellaswag, gsm8k and the wmdp group (three leaves of different sizes)."""
    write_prepared(cache, "allenai/ai2_arc", "ARC-Easy",
                   {"train": arc_rows(4), "validation": arc_rows(3), "test": arc_rows(6)})
    write_prepared(cache, "Rowan/hellaswag", None, {"train": hellaswag_rows(4), "validation": hellaswag_rows(5)})
    write_prepared(cache, "openai/gsm8k", "main", {"train": gsm8k_rows(6), "test": gsm8k_rows(4)})
    for topic, n in (("bio", 3), ("chem", 5), ("cyber", 4)):
        write_prepared(cache, "cais/wmdp", f"wmdp-{topic}", {"test": wmdp_rows(n, topic)})


if __name__ == "__main__":
    import sys

    what = sys.argv[2] if len(sys.argv) > 2 else "all"
    if what == "ifeval":
        write_prepared(Path(sys.argv[1]), "google/IFEval", None, {"train": ifeval_rows(IFEVAL_OFFLINE)})
    elif what == "ifeval-punkt":
        write_prepared(Path(sys.argv[1]), "google/IFEval", None, {"train": ifeval_rows(IFEVAL_NEEDS_PUNKT)})
    else:
        (write_mmlu if what == "mmlu" else write_all)(Path(sys.argv[1]))
