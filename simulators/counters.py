"""Cash-unit counters files (``counters/<TID>_<YYYYMMDD>.json``): one JSON object per
terminal and business day, laid out line by line as in ``shared/formats``."""

from __future__ import annotations

import json
from collections.abc import Sequence


def dumps_counters(terminal_id: str, date_iso: str, snapshots: Sequence[dict[str, object]]) -> str:
    """The file's text: a header line, then each snapshot with one cash unit a line."""
    head = json.dumps({"terminal_id": terminal_id, "business_date": date_iso})[:-1]
    parts = [f'{head}, "snapshots": [']
    rendered = []
    for snapshot in snapshots:
        fields = {k: v for k, v in snapshot.items() if k != "cash_units"}
        opening = json.dumps(fields)[:-1] + ', "cash_units": ['
        units = snapshot["cash_units"]
        assert isinstance(units, list)
        body = ",\n".join("   " + json.dumps(unit) for unit in units)
        rendered.append(f"  {opening}\n{body}]}}")
    return parts[0] + "\n" + ",\n".join(rendered) + "]}\n"
