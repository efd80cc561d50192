"""Pruned and merged variants of checkpoints: made from a recipe, reproducible, with a manifest.

recipe.py parses `[[variant]]` tables; build.py orders and makes them (merges before prunes) into
results/variants/<name>; merge.py and pcb.py merge through mergekit; prune.py and structured.py prune;
manifest.py records how each was made; harness.weights.variant_folders finds them by name.
"""
