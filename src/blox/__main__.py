"""`python -m blox` runs the command line."""

from blox.cli.main import main

main()
