"""The one place that knows every tool: which are offered to a turn, by name and API style.

Built once by `main.py` (hosted tools, pictures, the team's MCP servers); the processor asks it
for the tools of one turn, and the turn loop knows them only as `tools.base.Tool`s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from settings import Settings
from tools.base import ApiStyle, Tool
from tools.code_interpreter import CodeInterpreter
from tools.pictures import Pictures
from tools.web_search import WebSearch

if TYPE_CHECKING:
    from config import Config
    from openai_client import OpenAIClient

# Titles of the steps hosted tools take, which the provider runs (no `Tool.run` of ours).
HOSTED_TITLES = {
    "code_interpreter": CodeInterpreter().title({}),
    "image_generation": "Drawing",
    "file_search": "Searching files",
}


class ToolRegistry:
    """Every tool the bot has. `pictures`: the picture tool, when the server can draw;
    `local` is called again each turn (the team's MCP servers come and go)."""

    def __init__(
        self, style: ApiStyle, pictures: Tool | None = None, local: Callable[[], Sequence[Tool]] = tuple
    ) -> None:
        self.style = style
        self._web_search = WebSearch()
        self._code = CodeInterpreter()
        self._pictures = pictures
        self._local = local

    @property
    def can_run_code(self) -> bool:
        """Whether this API style has the code interpreter at all (so data files are worth keeping)."""
        return self._code.declaration(self.style) is not None

    def runs_code(self, settings: Settings) -> bool:
        """Whether this person's turns get the code interpreter."""
        return settings.code_interpreter and self.can_run_code

    def for_turn(self, settings: Settings, code_files: Sequence[str] = ()) -> list[Tool]:
        """The tools this person's settings enable that this API style offers; `code_files`:
        the uploaded data files the code interpreter's container gets."""
        chosen: list[Tool] = []
        if settings.web_search and self._web_search.declaration(self.style) is not None:
            chosen.append(self._web_search)
        if self.runs_code(settings):
            chosen.append(CodeInterpreter(code_files) if code_files else self._code)
        if self._pictures is not None:
            chosen.append(self._pictures)
        chosen.extend(tool for tool in self._local() if tool.group not in settings.tools_off)
        return chosen

    def declarations(self, tools: Sequence[Tool]) -> tuple[dict[str, Any], ...]:
        return tuple(d for d in (tool.declaration(self.style) for tool in tools) if d is not None)

    @staticmethod
    def hosted_title(tool: str, detail: str = "") -> str:
        """The title of a hosted tool's step (the provider said which tool, and e.g. a query)."""
        if tool == "web_search":
            return WebSearch().title({"query": detail})
        return HOSTED_TITLES.get(tool, "Working")


def default_tools(
    config: Config, ai: OpenAIClient, local: Callable[[], Sequence[Tool]] = tuple
) -> ToolRegistry:
    """The bot's tools: web search (per person's settings), pictures when the server can draw
    (`OPENAI_IMAGE_MODEL`), and `local` ones (the team's MCP servers)."""
    pictures = Pictures(ai, config.openai_image_model) if config.pictures_enabled else None
    return ToolRegistry(config.openai_api_style, pictures=pictures, local=local)
