"""A refused request: an HTTP status and a sentence a person understands."""

from __future__ import annotations

from typing import Any


class Refusal(Exception):
    def __init__(self, status_code: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.extra = extra
