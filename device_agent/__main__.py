"""``python -m device_agent``: the same as the ``atm-agent`` command."""

from device_agent.cli import main

main()
