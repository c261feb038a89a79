"""`python -m hal` runs the `hal` command line."""

from hal.cli import main

main()
