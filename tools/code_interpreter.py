"""Running code: OpenAI's hosted `code_interpreter` in an automatic container (Responses only).

The provider runs it; files it writes come back as `container_file_citation` annotations on
the answer, which the turn loop downloads and uploads into the thread.
"""

from __future__ import annotations

from typing import Any

from tools.base import ApiStyle, Tool


class CodeInterpreter(Tool):
    name = "code_interpreter"
    hosted = True
    description = "Run Python code"

    def declaration(self, style: ApiStyle) -> dict[str, Any] | None:
        if style != "responses":
            return None
        return {"type": "code_interpreter", "container": {"type": "auto"}}

    def title(self, arguments: dict[str, Any]) -> str:
        return "Running code"
