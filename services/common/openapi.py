"""The API description says what a refused request gets back.

Every 422 (a body or parameter FastAPI could not validate, or a refusal of the service)
answers ``{"detail": "<readable sentence>", "errors": ["<one per problem>"]}`` — see
``_add_error_handlers`` in services/common/web.py — not FastAPI's default list of
validation errors, which the generated description would otherwise promise.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

REFUSAL_SCHEMA: dict[str, Any] = {
    "title": "Refusal",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "title": "What was refused, in a sentence"},
        "errors": {"type": "array", "items": {"type": "string"}, "title": "Each problem"},
    },
}


def describe_refusals(app: FastAPI) -> None:
    """Replace the default validation error schema in ``app``'s OpenAPI description."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        schemas = schema.get("components", {}).get("schemas", {})
        if "HTTPValidationError" in schemas:
            schemas["HTTPValidationError"] = REFUSAL_SCHEMA
            schemas.pop("ValidationError", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
