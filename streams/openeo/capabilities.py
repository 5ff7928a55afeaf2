"""Capabilities, well-known document, conformance and file formats of the openEO API."""

from __future__ import annotations

from typing import Any

API_VERSION = "1.2.0"
BACKEND_VERSION = "gravitas-0.1.0"

ENDPOINTS: list[tuple[str, list[str]]] = [
    ("/", ["GET"]),
    ("/conformance", ["GET"]),
    ("/file_formats", ["GET"]),
    ("/processes", ["GET"]),
    ("/collections", ["GET"]),
    ("/collections/{collection_id}", ["GET"]),
    ("/credentials/basic", ["GET"]),
    ("/me", ["GET"]),
    ("/result", ["POST"]),
    ("/validation", ["POST"]),
    ("/udf_runtimes", ["GET"]),
    ("/service_types", ["GET"]),
    ("/process_graphs", ["GET"]),
    ("/process_graphs/{process_graph_id}", ["GET", "PUT", "DELETE"]),
    ("/jobs", ["GET", "POST"]),
    ("/jobs/{job_id}", ["GET", "PATCH", "DELETE"]),
    ("/jobs/{job_id}/results", ["GET", "POST", "DELETE"]),
    ("/jobs/{job_id}/logs", ["GET"]),
]

CONFORMANCE = [
    "https://api.openeo.org/1.2.0",
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
]


def capabilities(base_url: str, node_id: str) -> dict[str, Any]:
    return {
        "api_version": API_VERSION,
        "backend_version": BACKEND_VERSION,
        "stac_version": "1.0.0",
        "type": "Catalog",
        "id": f"gravitas-{node_id}",
        "title": f"gravitas node {node_id}",
        "description": (
            "openEO API of a gravitas node: collections of its pixel store and of the "
            "federation, synchronous processing, batch jobs and user-defined processes"
        ),
        "production": False,
        "endpoints": [{"path": p, "methods": m} for p, m in ENDPOINTS],
        "links": [
            {"rel": "self", "href": f"{base_url}/", "type": "application/json"},
            {"rel": "conformance", "href": f"{base_url}/conformance",
             "type": "application/json"},
            {"rel": "data", "href": f"{base_url}/collections", "type": "application/json"},
            {"rel": "version-history", "href": f"{base_url.rsplit('/openeo/', 1)[0]}"
             "/.well-known/openeo", "type": "application/json"},
        ],
    }  # fmt: skip


def well_known(root_url: str) -> dict[str, Any]:
    return {
        "versions": [
            {"url": f"{root_url}/openeo/1.2/", "api_version": API_VERSION, "production": False}
        ]
    }


def conformance() -> dict[str, Any]:
    return {"conformsTo": CONFORMANCE}
