"""Where variants live (results/variants/<name>) and how a name becomes a folder.

`harness.weights.models.resolve` asks `variant_folder` before giving up on a name, which is how `harness eval
--models <variant>` finds made variants without a path. A folder is a finished variant once its MANIFEST is
written (harness.variants.manifest says what it records).
"""

from __future__ import annotations

from pathlib import Path

from harness.common.paths import child, is_plain, results_dir

MANIFEST = "manifest.json"


def variants_dir() -> Path:
    return results_dir() / "variants"


def variant_path(name: str) -> Path:
    """Where variant `name` lives: always directly inside variants_dir(), or one line refusing the name."""
    return child(variants_dir(), name, "variant")


def variant_folder(name: str) -> Path | None:
    """The folder of a finished variant (one with a manifest), or None."""
    if not is_plain(name):
        return None
    folder = variant_path(name)
    return folder.resolve() if (folder / MANIFEST).is_file() else None
