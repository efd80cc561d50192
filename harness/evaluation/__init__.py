"""Evaluation: settings (specs), the runner (controller) and per-item scoring into store rows."""
