"""Model fields of the IM app."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.db import models


class OrderedJSONField(models.TextField):
    """JSON stored as compact text, so object key order survives every database.

    PostgreSQL's jsonb (what JSONField uses there) reorders keys, but the wire format fixes the order of
    frame and payload keys (`type` first, the bot frame's field order), so payloads are kept verbatim.
    """

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        return None if value is None else json.loads(value)

    def to_python(self, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    def value_to_string(self, obj: models.Model) -> str:
        return self.get_prep_value(self.value_from_object(obj)) or ""

    def formfield(self, **kwargs: Any) -> forms.Field:
        return forms.JSONField(**{"required": not self.blank, **kwargs})
