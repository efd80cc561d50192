"""Task data lives in the Hugging Face datasets cache, filled through lm-eval; offline, a missing dataset is one line.

`harness tasks download` fills the cache on a machine with network; the cache folder can then be copied to (or
shared with) an air-gapped cluster, where HF_DATASETS_OFFLINE=1 reads it.
"""

from __future__ import annotations

import os
import re

from harness.common.errors import HarnessError

_UNREACHABLE = re.compile(r"Couldn't reach '([^']+)' on the Hub|(OfflineModeIsEnabled|LocalEntryNotFoundError)")
# nltk's LookupError: "Resource punkt_tab not found. Please use the NLTK Downloader ..." (IFEval's metric code needs it)
_NLTK_MISSING = re.compile(r"Resource \x1b\[93m(\w+)\x1b\[0m not found|Resource '?(\w+)'? not found")


def cache_dir() -> str:
    import datasets

    return str(datasets.config.HF_DATASETS_CACHE)


def is_cached(path: str | None, name: str | None) -> bool:
    """Whether `datasets` would find this dataset offline (its prepared-cache folder exists)."""
    if not path or "/" not in path:
        return bool(path)  # local builders (json, parquet, ...) read files named in the config
    from datasets.naming import camelcase_to_snakecase

    namespace, _, dataset = path.rpartition("/")
    folder = os.path.join(cache_dir(), f"{namespace}___{camelcase_to_snakecase(dataset)}", name or "default")
    return os.path.isdir(folder)


def missing_data_hint(exc: BaseException, task: str | None = None) -> str | None:
    """The one line for a dataset that is neither cached nor reachable, naming task, dataset and fix; else None."""
    where = f"task '{task}': " if task else ""
    if isinstance(exc, LookupError) and (resource := _NLTK_MISSING.search(f"{exc}")) is not None:
        return (f"{where}nltk's '{resource.group(1) or resource.group(2)}' data is not installed and cannot be "
                f"fetched; run `harness tasks download {task or 'TASK'}` on a machine with network (lm-eval fetches it "
                "into nltk's data folder) and copy that folder here, or point NLTK_DATA at a copy")
    found = _UNREACHABLE.search(f"{exc}")
    if found is None:
        return None
    dataset = found.group(1) or "its dataset"
    offline = " (HF_DATASETS_OFFLINE=1)" if os.environ.get("HF_DATASETS_OFFLINE") == "1" else ""
    return (f"{where}dataset '{dataset}' is not in the datasets cache ({cache_dir()}) and cannot be fetched{offline}; "
            f"run `harness tasks download {task or 'TASK'}` on a machine with network and share that cache")


def load_task(config: dict):
    """lm-eval's Task for one config, its data loaded (fetched into the cache if it can be); a dataset neither
    cached nor reachable is one line."""
    from lm_eval.tasks import TaskManager

    try:
        return TaskManager(include_defaults=False).load([config])["tasks"][config["task"]]
    except (ConnectionError, OSError) as exc:
        raise HarnessError(missing_data_hint(exc, config["task"]) or f"task '{config['task']}': {exc}") from None


def download(build_configs) -> None:
    """Load every task's data once (lm-eval fetches and prepares it into the datasets cache)."""
    for build_config in build_configs:
        load_task(build_config())
