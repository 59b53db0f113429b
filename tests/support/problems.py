"""What every API error body must look like (RFC 9457 problem details with our stable
fields), and the size unit the oversized-request tests send."""

from __future__ import annotations

from typing import Any

import httpx

MB = 1024 * 1024


def assert_problem(response: httpx.Response) -> dict[str, Any]:
    """RFC 9457 problem details with our stable fields."""
    assert response.headers["content-type"] == "application/problem+json", response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    assert isinstance(body["code"], str) and body["code"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body
