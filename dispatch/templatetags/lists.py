"""Filters for the long lists (queues, inbox, drill-downs): the same text, cheaper per row."""

from __future__ import annotations

from django import template
from django.db import models
from django.utils.translation import get_language

register = template.Library()

# (model, field, language) -> {value: label}: a list of 250 rows asks for its few labels 750
# times, and ``get_FOO_display`` builds the field's table of choices again at every call.
_TABLES: dict[tuple, dict] = {}


@register.filter
def label(obj: models.Model, field_name: str) -> str:
    """``obj.get_<field_name>_display()``, from a table made once per field and language."""
    field = obj._meta.get_field(field_name)
    assert isinstance(field, models.Field)  # a column with choices
    value = getattr(obj, field.attname)
    key = (type(obj), field_name, get_language())
    table = _TABLES.get(key)
    if table is None:
        table = _TABLES[key] = {choice: str(text) for choice, text in field.flatchoices}
    return table.get(value, value)
