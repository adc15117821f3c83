"""`python -m ivybt` runs the command line."""

from ivybt.cli import main

main()
