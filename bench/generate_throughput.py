"""Generation throughput of ``atm-sim generate``: a large day (1,000 ATMs x ~250 transactions).

Prints transactions per second with one process and with two (terminals split
between them), as JSON lines.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from simulators.generate import FleetOptions, generate

OPTIONS = FleetOptions(terminals=1000, days=1, seed=1, mean_transactions=250, iso_encoder="fast")


def main() -> None:
    for workers in (1, 2):
        out = Path(tempfile.mkdtemp(prefix="atm-sim-bench-"))
        try:
            report = generate(replace(OPTIONS, workers=workers), out)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        print(
            json.dumps(
                {
                    "metric": f"generate_transactions_per_second_{workers}_worker"
                    + ("s" if workers > 1 else ""),
                    "value": round(report.transactions_per_second),
                    "unit": "transactions/s",
                }
            )
        )
    print(
        json.dumps(
            {
                "metric": "generate_large_day_transactions",
                "value": report.transactions,
                "unit": "transactions",
            }
        )
    )


if __name__ == "__main__":
    main()
