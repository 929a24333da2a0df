"""`python -m pplog`."""

from pplog.cli import main

main()
