"""The dispatch app's domain error: a change to a case that the rules refuse."""

from __future__ import annotations


class DispatchError(Exception):
    """A change the rules refuse. The message is translated and shown to the user as it is."""

    def __init__(self, message: str, *, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class StaleCaseError(DispatchError):
    """The case changed after the user's form was drawn (two dispatchers, a retried request)."""

    def __init__(self, message: str, *, code: str = "stale") -> None:
        super().__init__(message, code=code)
