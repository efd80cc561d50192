"""Small pieces every room uses: errors, path rules, atomic writes, spec-file reading, progress display."""
