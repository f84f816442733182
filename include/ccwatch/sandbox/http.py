"""The double's HTTP request and response types, apart from the server (services import these,
the server imports the services: no cycle)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs


@dataclass
class SandboxRequest:
    method: str
    path: str  # URL path without the query string, percent-decoding NOT applied
    query: dict[str, list[str]]
    headers: Any  # email.message.Message (case-insensitive .get)
    body: bytes
    host: str
    raw_target: str  # path + "?" + query exactly as sent

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def json_body(self) -> Any:
        if not self.body:
            return {}
        return json.loads(self.body.decode("utf-8"))

    def form_body(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {k: v[-1] for k, v in parsed.items()}

    @property
    def origin(self) -> str:
        return f"http://{self.host}"


@dataclass
class SandboxResponse:
    status: int = 200
    data: Any = None  # JSON-able payload; ignored when ``raw`` is set
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # a body that is not JSON (or already serialised)
    content_type: str = "application/json; charset=utf-8"
    abort: bool = False  # close the connection without any answer (fault mode "reset")
    on_sent: Callable[[], None] | None = None  # called just before a complete answer is written

    def body_bytes(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.data is None and self.status in (204, 304):
            return b""
        return json.dumps(self.data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> SandboxResponse:
    return SandboxResponse(status=status, data=data, headers=dict(headers or {}))


def graphql_summary(body: bytes) -> dict:
    """operationName and the owner/name/ids variables of a GraphQL POST, and a batch's repositories
    (for per-repository request accounting); never the whole body."""
    try:
        doc = json.loads(body.decode("utf-8") or "{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(doc, dict):
        return {}
    variables = doc.get("variables") if isinstance(doc.get("variables"), dict) else {}
    out = {"operationName": doc.get("operationName")}
    out.update({k: v for k, v in variables.items() if k in ("owner", "name", "ids") and isinstance(v, (str, list))})
    if isinstance(out.get("ids"), list):
        out["ids"] = [i for i in out["ids"] if isinstance(i, str)][:100]  # node ids: no secrets
    # a batch's aliased repositories ($o0/$n0, $o1/$n1 ...: CcwatchBranchHistories)
    repos = [f"{variables[f'o{i}']}/{variables.get(f'n{i}')}" for i in range(100)
             if isinstance(variables.get(f"o{i}"), str)]
    if repos:
        out["repos"] = repos
    return out
