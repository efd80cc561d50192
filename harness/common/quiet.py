"""Library noise kept out of normal output, and let back in with `harness -v` (issue 17).

What it silences: tqdm bars of lm-eval, transformers, datasets and vLLM (lm-eval passes `disable_tqdm=False` to its
own inner calls, so tqdm's TQDM_DISABLE alone does not reach them); library log records below ERROR (lm-eval's
"metric ... is defined, but aggregation is not", transformers' and datasets' notices, matplotlib's font lookups);
Python warnings (matplotlib's "Glyph ... missing from font", scipy's SmallSampleWarning, transformers' and torch's
deprecations), which the harness itself never uses for its messages. Our own output (rich progress bars, notes,
tables, one-line errors) goes through rich and logging-free code, so it is untouched.

The CLI's choice travels in HARNESS_VERBOSE ("1" or "0"), so processes it starts (Ray workers) follow it. Without
one (the Python API inside someone else's program) only the libraries' log levels are set, as before: a library
does not silence its host's warnings or progress bars.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import warnings

VERBOSE_ENV = "HARNESS_VERBOSE"
_SHOW = warnings.showwarning

# Libraries whose records (below ERROR) are noise to a harness user.
LOGGERS = ("lm_eval", "lm-eval", "transformers", "datasets", "accelerate", "huggingface_hub", "matplotlib",
           "vllm", "ray", "mergekit", "torch", "urllib3", "filelock", "numexpr", "fsspec", "absl", "PIL")
# Read by those libraries when they are imported (here and in worker processes): their own switches, so their
# settings agree with ours even where they reset their loggers on import (transformers does).
_ENV = {"TRANSFORMERS_VERBOSITY": "error", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1", "DATASETS_VERBOSITY": "error",
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1",
        "VLLM_LOGGING_LEVEL": "ERROR", "PYTHONWARNINGS": "ignore"}


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def configure(verbose_flag: bool) -> None:
    """The app's choice, once per command (`harness -v ...` or HARNESS_VERBOSE=1)."""
    os.environ[VERBOSE_ENV] = "1" if verbose_flag or verbose() else "0"
    quiet_libraries()


def quiet_libraries() -> None:
    """Apply the choice to this process; safe to call again (after importing a library that resets its logging)."""
    if VERBOSE_ENV not in os.environ:  # not under the CLI: the libraries' log lines only
        for name in LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        return
    if verbose():
        for key, value in _ENV.items():  # this process's own quiet settings (an earlier command in it) go
            if os.environ.get(key) == value:
                del os.environ[key]
        warnings.simplefilter("default")  # each warning once per place, as Python shows them without filters
        warnings.showwarning = _SHOW
        for name in LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.lastResort.setLevel(logging.WARNING)
        _transformers(logging.WARNING)
        return
    for key, value in _ENV.items():
        os.environ.setdefault(key, value)
    warnings.simplefilter("ignore")
    warnings.showwarning = _dropped  # also where a library adds an "always" filter of its own
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.lastResort.setLevel(logging.ERROR)  # records of loggers with no handler of their own
    _transformers(logging.ERROR)
    _quiet_tqdm()


def _dropped(*args, **kwargs) -> None:
    pass


def _transformers(level: int) -> None:
    """transformers sets its loggers' level from TRANSFORMERS_VERBOSITY when imported; once imported, say it again."""
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity(level)
        (hf_logging.enable_progress_bar if level < logging.ERROR else hf_logging.disable_progress_bar)()


def _quiet_tqdm() -> None:
    """Every tqdm bar disabled, whatever its caller passed (lm-eval's HFLM passes disable=False inside
    loglikelihood_rolling); transformers', datasets' and huggingface_hub's bars are tqdm subclasses, so they follow."""
    from tqdm import std

    init = std.tqdm.__init__
    if getattr(init, "_harness_quiet", False):
        return

    @functools.wraps(init)
    def quiet_init(self, *args, **kwargs):
        if not verbose():
            kwargs["disable"] = True
        init(self, *args, **kwargs)

    quiet_init._harness_quiet = True
    std.tqdm.__init__ = quiet_init
