"""Running code: OpenAI's hosted `code_interpreter` in an automatic container (Responses only).

The provider runs it. Files it writes come back as `container_file_citation` annotations on the
answer, which the turn loop downloads and uploads into the thread. Data files people shared in
the thread (CSV, spreadsheets, JSON) go the other way: uploaded once to the provider and listed
in the container's `file_ids`, so "plot this by month" works on the real file, not on a text copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from tools.base import ApiStyle, Tool

# What the code interpreter gets as the file itself, by extension.
DATA_EXTENSIONS = frozenset({"csv", "tsv", "xlsx", "xlsm", "json", "jsonl"})
# One answer's container gets at most this many of the thread's data files, newest first,
# and at most this many bytes of them.
MAX_FILES = 10
MAX_TOTAL_BYTES = 100 * 1024 * 1024
# The provider deletes an upload after this long; one uploaded earlier than the margin before
# that is uploaded again rather than risk a file id that is gone mid-answer.
UPLOAD_LIFETIME_SECONDS = 24 * 3600
UPLOAD_REUSE_SECONDS = UPLOAD_LIFETIME_SECONDS - 3600


def is_data_file(name: str) -> bool:
    """A file the code interpreter should get as it is (decided by its name's extension)."""
    return "." in name and name.rsplit(".", 1)[-1].lower() in DATA_EXTENSIONS


class Sized(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def size(self) -> int: ...


F = TypeVar("F", bound=Sized)


def choose_files(files: Sequence[F], max_files: int = MAX_FILES, max_bytes: int = MAX_TOTAL_BYTES) -> tuple[list[F], list[F]]:
    """(handed over, left out) of the thread's data files, given newest first: the newest that
    fit in number and bytes. A file too big for what is left is skipped; smaller, older ones may
    still fit."""
    kept: list[F] = []
    left: list[F] = []
    total = 0
    for file in files:
        if len(kept) < max_files and total + file.size <= max_bytes:
            kept.append(file)
            total += file.size
        else:
            left.append(file)
    return kept, left


def files_note(names: Sequence[str]) -> str:
    """What the model is told about the files in its container (appended to its instructions)."""
    return (
        "\n\nThe code interpreter's container has these files people shared in this thread "
        f"(under /mnt/data): {', '.join(names)}. Use the code interpreter on them for charts and "
        "calculations, reading the real data rather than guessing it."
    )


class CodeInterpreter(Tool):
    """`file_ids`: the uploaded data files of this turn's thread."""

    name = "code_interpreter"
    hosted = True
    description = "Run Python code"

    def __init__(self, file_ids: Sequence[str] = ()) -> None:
        self.file_ids = tuple(file_ids)

    def declaration(self, style: ApiStyle) -> dict[str, Any] | None:
        if style != "responses":
            return None
        container: dict[str, Any] = {"type": "auto"}
        if self.file_ids:
            container["file_ids"] = list(self.file_ids)
        return {"type": "code_interpreter", "container": container}

    def title(self, arguments: dict[str, Any]) -> str:
        return "Running code"
