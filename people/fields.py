"""A text column stored as ciphertext through ``people.crypto``."""

from __future__ import annotations

from django.db import models

from people.crypto import get_cipher


class EncryptedTextField(models.TextField):
    """Holds ciphertext in the database and plaintext in Python.

    It cannot be filtered on: equality lookups go through a companion blind-index column.
    """

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return get_cipher().decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return get_cipher().encrypt(value)

    def get_lookup(self, lookup_name):
        if lookup_name != "isnull":
            raise TypeError(f"encrypted fields cannot be filtered with __{lookup_name}")
        return super().get_lookup(lookup_name)
