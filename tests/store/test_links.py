"""The schema's links (app/store/links.py): each names an operation that exists, by the route
name that is its operation id, and parameters that operation takes. Whether a fuzzer gets
somewhere by them is tests/test_schema_fuzzing.py's business."""

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from app.store.links import LINKS


def schema_operations(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for methods in schema["paths"].values():
        yield from ((operation["operationId"], operation) for operation in methods.values())


def test_operation_ids_are_the_route_names(app: FastAPI) -> None:
    # Stable names for generated clients (`listOrders`) and for the links below.
    routes = [r.original_route for r in iter_route_contexts(app.routes)]
    names = sorted(route.name for route in routes if isinstance(route, APIRoute))
    assert sorted(operation_id for operation_id, _ in schema_operations(app.openapi())) == names


def test_every_link_names_an_operation_and_its_parameters(app: FastAPI) -> None:
    operations = dict(schema_operations(app.openapi()))
    for (source, status), links in LINKS.items():
        documented = operations[source]["responses"][str(status)]["links"]
        assert set(documented) == set(links)
        for link in documented.values():
            target = operations[link["operationId"]]
            accepted = {f"{p['in']}.{p['name']}" for p in target.get("parameters", [])}
            for name in link["parameters"]:
                qualified = name if "." in name else f"path.{name}"
                assert qualified in accepted, (source, link["operationId"], name)
            assert ("requestBody" in link) <= ("requestBody" in target), link
