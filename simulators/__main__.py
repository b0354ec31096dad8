"""``python -m simulators``: the same as the ``atm-sim`` command."""

from simulators.cli import main

main()
