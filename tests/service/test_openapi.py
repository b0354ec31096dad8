"""The OpenAPI document describes what the API really does."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient


def _document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_every_api_route_is_documented(app: FastAPI, client: TestClient) -> None:
    paths = _document(client)["paths"]
    checked = 0
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.path and context.path.startswith("/api/"):
            assert context.path in paths, context.path
            for method in context.methods or ():
                assert method.lower() in paths[context.path], (method, context.path)
                checked += 1
    assert checked >= 20


def test_errors_are_documented_as_problem_details(client: TestClient) -> None:
    document = _document(client)
    schemas = document["components"]["schemas"]
    assert "Problem" in schemas
    assert "HTTPValidationError" not in schemas
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            guarded = path != "/api/v1/session" or method != "post"
            if guarded:
                assert "401" in responses, (method, path)
                assert "403" in responses, (method, path)
            for code, response in responses.items():
                if int(code) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], (
                        method,
                        path,
                        code,
                    )
            if method in {"post", "patch"} and "requestBody" in operation:
                assert "422" in responses, (method, path)


def test_no_interactive_docs_with_external_assets(client: TestClient) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
