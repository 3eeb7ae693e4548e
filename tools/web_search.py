"""Web search: OpenAI's hosted `web_search` tool (Responses only; the provider runs it)."""

from __future__ import annotations

from typing import Any

from tools.base import ApiStyle, Tool


class WebSearch(Tool):
    name = "web_search"
    hosted = True
    description = "Search the web"

    def declaration(self, style: ApiStyle) -> dict[str, Any] | None:
        return {"type": "web_search"} if style == "responses" else None

    def title(self, arguments: dict[str, Any]) -> str:
        query = str(arguments.get("query") or "").strip()
        return f"Searching the web for “{query[:80]}”" if query else "Searching the web"
