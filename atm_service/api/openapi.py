"""The OpenAPI document: error responses declared as problem details."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from atm_service.problems import PROBLEM_MEDIA_TYPE, Problem

_DESCRIPTIONS = {
    400: "Bad request",
    401: "Not logged in, or the session has ended",
    403: "The user's role may not do this, or the CSRF token is missing or wrong",
    404: "No such entity",
    409: "Conflicts with existing data or with the entity's state",
    422: "Invalid input; `errors` names each bad field",
    423: "Account locked after repeated failed logins",
    429: "Rate limit hit; see Retry-After",
    503: "Not configured: e.g. lock control without its master key",
}

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for a route: each code answers with a Problem."""
    return {
        code: {
            "description": _DESCRIPTIONS.get(code, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}},
        }
        for code in codes
    }


def install(app: FastAPI) -> None:
    """Replace FastAPI's default 422 schema with the Problem type we actually send."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in (
            Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            .get("$defs", {})
            .items()
        ):
            components[name] = definition
        problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        problem_schema.pop("$defs", None)
        components["Problem"] = problem_schema
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                if "422" in responses:
                    responses["422"] = {
                        "description": _DESCRIPTIONS[422],
                        "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}},
                    }
                for code, response in responses.items():
                    if code.isdigit() and int(code) >= 400:
                        response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
