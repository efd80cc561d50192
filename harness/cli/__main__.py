"""`python -m harness.cli` runs the command line (tests start it this way in a subprocess)."""

from harness.cli.app import main

main()
