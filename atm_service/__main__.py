"""``python -m atm_service``: the same as the ``atm-service`` command."""

from atm_service.cli import main

main()
