"""What every IM service module checks the same way: field lengths and rows that may vanish meanwhile."""

from __future__ import annotations

from django.db import models

from core.errors import Invalid


def check_length(field: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise Invalid(f"{field} must be at most {limit} characters")


def row_locked(model: type[models.Model], pk: str) -> bool:
    """Lock the row for this transaction; False when a concurrent transaction deleted it meanwhile.

    PostgreSQL lets concurrent deletes find the row before the first commits; the lock makes the later
    ones wait and then see it gone, so only one deletes and emits `*.deleted` (security.md S8). SQLite
    serialises write transactions already.
    """
    return model.objects.select_for_update().filter(pk=pk).exists()
