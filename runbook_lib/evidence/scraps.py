"""What a stage glues into its executed notebook, and what later stages and the report read back.

The only module that imports scrapbook (unmaintained since 2021): replacing it touches this file
alone. Only JSON-safe values are glued: ``json_safe`` is the one place that converts.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any


def json_safe(value: Any) -> Any:
    """Convert numpy scalars, Decimals, datetimes, paths and tuples into plain JSON values."""
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot glue a {type(value).__name__}")


def glue(name: str, value: Any) -> None:
    """Record ``value`` in the executing notebook for later stages and auditors."""
    import scrapbook

    scrapbook.glue(name, json_safe(value), encoder="json")


def read_scraps(notebook: Path) -> dict[str, Any]:
    """Everything glued in an executed notebook, by name."""
    import scrapbook

    if not notebook.is_file():
        return {}
    return {
        name: scrap.data for name, scrap in scrapbook.read_notebook(str(notebook)).scraps.items()
    }
