"""`python -m gmhf` runs the command line."""

from gmhf.cli import main

main()
