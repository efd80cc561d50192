"""Damaged and hostile model folders through `harness eval` in a subprocess: each is one `error:` line naming the
file, exit code 2, no traceback, no hang, and the store byte-for-byte as it was (or still absent)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from harness.common.errors import HarnessError
from harness.weights.trust import LoadPolicy, check_model_folder

REPO = Path(__file__).resolve().parents[1]
TASK = "compare_yes_no"  # what the refused commands ask for; the stored run is on another task
STORED_TASK = "arith_add_2d"


def harness(root: Path, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    """The CLI in its own process, on the store in `root`; a hang fails the test at `timeout`."""
    env = os.environ | {"HARNESS_RESULTS": str(root), "HARNESS_DB": str(root / "h.duckdb")}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def eval_model(root: Path, models: str, *extra: str) -> subprocess.CompletedProcess:
    return harness(root, "eval", "--models", models, "--tasks", TASK, "--limit", "2", "--display", "none", *extra)


def store_bytes(root: Path) -> dict[str, bytes]:
    """Every file of the store (database and any write-ahead log), by name."""
    return {p.name: p.read_bytes() for p in sorted(root.glob("h.duckdb*"))}


def assert_refused(proc: subprocess.CompletedProcess, *words: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("error: ") and all(w in lines[0] for w in words), lines[0]


@pytest.fixture(scope="module")
def stored(tiny_model, tmp_path_factory) -> Path:
    """A store holding one finished run of the tiny model (named 'tiny') on another task."""
    root = tmp_path_factory.mktemp("stored")
    done = harness(root, "eval", "--models", str(tiny_model), "--tasks", STORED_TASK, "--limit", "2",
                   "--display", "none", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "h.duckdb"


@pytest.fixture()
def root(stored, tmp_path) -> Path:
    """A results folder with its own copy of the stored store."""
    folder = tmp_path / "results"
    folder.mkdir()
    shutil.copyfile(stored, folder / "h.duckdb")
    return folder


def copy_model(tiny_model: Path, where: Path, name: str = "damaged") -> Path:
    folder = where / name
    shutil.copytree(tiny_model, folder)
    return folder


def rewrite_header(folder: Path, change) -> None:
    """model.safetensors with its first tensor's header entry changed by `change`, data untouched."""
    file = folder / "model.safetensors"
    data = file.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    change(header[next(k for k in header if k != "__metadata__")])
    raw = json.dumps(header).encode()
    file.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + length:])


def link(target: str):
    def damage(folder: Path) -> None:
        (folder / "model.safetensors").unlink()
        (folder / "model.safetensors").symlink_to(target)
    return damage


def fifo(folder: Path) -> None:
    (folder / "model.safetensors").unlink()
    os.mkfifo(folder / "model.safetensors")


DAMAGES = {  # damage, extra flags, words the one line must hold
    "3 bytes": (lambda f: (f / "model.safetensors").write_bytes(b"abc"), (), ("model.safetensors", "3 bytes")),
    "2^62-byte header": (lambda f: (f / "model.safetensors").write_bytes(struct.pack("<Q", 2 ** 62) + b"{}"), (),
                         ("model.safetensors", "header claims")),
    "link to /etc/passwd": (link("/etc/passwd"), (), ("model.safetensors", "/etc/passwd", "--allow-outside-links")),
    "link to /dev/zero": (link("/dev/zero"), (), ("model.safetensors", "/dev/zero", "--allow-outside-links")),
    "allowed link to /etc/passwd": (link("/etc/passwd"), ("--allow-outside-links",),
                                    ("model.safetensors", "not a safetensors file")),
    "allowed link to /dev/zero": (link("/dev/zero"), ("--allow-outside-links",),
                                  ("model.safetensors", "not a regular file")),
    "fifo": (fifo, ("--allow-outside-links",), ("model.safetensors", "not a regular file")),
    "1e24 elements": (lambda f: rewrite_header(f, lambda t: t.update(shape=[10 ** 12, 10 ** 12])), (),
                      ("model.safetensors", "shape")),
    "offsets past the end": (lambda f: rewrite_header(f, lambda t: t.update(data_offsets=[0, 10 ** 15])), (),
                             ("model.safetensors", "data_offsets")),
    "deeply nested tokenizer_config.json": (
        lambda f: (f / "tokenizer_config.json").write_text("[" * 100_000 + "]" * 100_000), (),
        ("tokenizer_config.json", "nested")),
}


@pytest.mark.parametrize("case", list(DAMAGES))
def test_damaged_folder_is_one_line_and_store_unchanged(case, tiny_model, root, tmp_path):
    damage, flags, words = DAMAGES[case]
    folder = copy_model(tiny_model, tmp_path)
    damage(folder)
    before = store_bytes(root)
    assert_refused(eval_model(root, str(folder), *flags), *words)
    assert store_bytes(root) == before


def test_refused_folder_creates_no_store(tiny_model, tmp_path):
    folder = copy_model(tiny_model, tmp_path)
    (folder / "model.safetensors").write_bytes(b"abc")
    assert_refused(eval_model(tmp_path / "fresh", str(folder)), "model.safetensors")
    assert store_bytes(tmp_path / "fresh") == {}


def test_name_clash_with_the_store_writes_nothing(tiny_model, root, tmp_path):
    """Same name, other files (a changed config); and the same files under a second name."""
    folder = copy_model(tiny_model, tmp_path, "tiny")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"rms_norm_eps": 0.5}))
    before = store_bytes(root)
    assert_refused(eval_model(root, str(folder)), "'tiny'", "other files")
    assert store_bytes(root) == before
    assert_refused(eval_model(root, f"{tiny_model}=second"), "'second'", "'tiny'")
    assert store_bytes(root) == before


def test_name_clash_within_one_command_creates_no_store(tiny_model, tmp_path, monkeypatch):
    other = copy_model(tiny_model, tmp_path, "other")
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps(config | {"rms_norm_eps": 0.5}))
    fresh = tmp_path / "fresh"
    assert_refused(eval_model(fresh, f"{tiny_model}=x,{other}=x"), "--models", "duplicate", "x")
    assert_refused(eval_model(fresh, f"{tiny_model}=x,{tiny_model}=y"), "'y'", "'x'")
    assert store_bytes(fresh) == {}

    import harness

    monkeypatch.setenv("HARNESS_RESULTS", str(fresh))  # the API takes model strings without the CLI's name check
    with pytest.raises(HarnessError, match="'x': named twice in this command"):
        harness.evaluate([f"{tiny_model}=x", f"{other}=x"], [TASK], db=fresh / "h.duckdb", limit=2)
    assert store_bytes(fresh) == {}


def test_allowed_outside_link_evaluates(tiny_model, tmp_path):
    """With --allow-outside-links, weights linked from elsewhere are read and evaluated as the same model."""
    folder = copy_model(tiny_model, tmp_path, "linked")
    link(str(tiny_model / "model.safetensors"))(folder)
    done = eval_model(tmp_path / "results", str(folder), "--allow-outside-links")
    assert done.returncode == 0, done.stderr[-3000:]


def test_hub_snapshot_links_into_its_own_blobs_are_fine(tmp_path):
    """The hub cache is links from snapshots/<commit> into ../../blobs: accepted; a link beyond it is not."""
    repo = tmp_path / "models--org--name"
    (repo / "blobs").mkdir(parents=True)
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    for name, text in (("config.json", "{}"), ("model.safetensors", "")):
        (repo / "blobs" / f"sha-{name}").write_text(text)
        (snapshot / name).symlink_to(Path("../../blobs") / f"sha-{name}")
    assert check_model_folder(snapshot, "model", LoadPolicy()) == "safetensors"
    (snapshot / "tokenizer.json").symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "elsewhere.json").write_text("{}")
    with pytest.raises(HarnessError, match="links outside the model folder"):
        check_model_folder(snapshot, "model", LoadPolicy())


def test_fingerprinting_refuses_what_is_not_a_regular_file(tmp_path):
    """weights_sha256 on its own (as variants call it) never reads a device: one error, not an endless hash."""
    (tmp_path / "model.safetensors").symlink_to("/dev/zero")
    code = ("from pathlib import Path; from harness.common.errors import HarnessError\n"
            "from harness.weights.models import weights_sha256\n"
            f"try:\n    weights_sha256(Path({str(tmp_path)!r}))\nexcept HarnessError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          check=False)
    assert "model.safetensors: not a regular file" in done.stdout, done.stderr[-3000:]
