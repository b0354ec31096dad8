"""Parameter types shared by the API and the pages.

Every id in a path or a query string is a database key: a positive integer that
fits the 32-bit key columns. Declaring that bound makes an out-of-range id a 422
naming the parameter, and the OpenAPI document says it, instead of the database
driver failing on a number it cannot store.
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge, Le

from atm_service.models.base import MAX_ID

MAX_OFFSET = 2**31 - 1

DbId = Annotated[int, Ge(1), Le(MAX_ID)]
