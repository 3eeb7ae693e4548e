"""The one place that knows every tool: which are offered to a turn, by name and API style.

Built once by `main.py` (hosted tools, pictures, the team's MCP servers); the processor asks it
for the tools of one turn, and the turn loop knows them only as `tools.base.Tool`s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from settings import Settings
from tools.base import ApiStyle, Tool
from tools.web_search import WebSearch

# Titles of the steps hosted tools take, which the provider runs (no `Tool.run` of ours).
HOSTED_TITLES = {
    "code_interpreter": "Running code",
    "image_generation": "Drawing",
    "file_search": "Searching files",
}


class ToolRegistry:
    """Every tool the bot has; `local` is called again each turn (MCP servers come and go)."""

    def __init__(self, style: ApiStyle, local: Callable[[], Sequence[Tool]] = tuple) -> None:
        self.style = style
        self._web_search = WebSearch()
        self._local = local

    def for_turn(self, settings: Settings) -> list[Tool]:
        """The tools this person's settings enable that this API style offers."""
        chosen: list[Tool] = []
        if settings.web_search and self._web_search.declaration(self.style) is not None:
            chosen.append(self._web_search)
        chosen.extend(self._local())
        return chosen

    def declarations(self, tools: Sequence[Tool]) -> tuple[dict[str, Any], ...]:
        return tuple(d for d in (tool.declaration(self.style) for tool in tools) if d is not None)

    @staticmethod
    def hosted_title(tool: str, detail: str = "") -> str:
        """The title of a hosted tool's step (the provider said which tool, and e.g. a query)."""
        if tool == "web_search":
            return WebSearch().title({"query": detail})
        return HOSTED_TITLES.get(tool, "Working")
