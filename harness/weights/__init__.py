"""Model folders: naming and resolving models, fingerprints, what may be loaded, tensor-by-tensor weight I/O."""
