"""Which data files one answer's code interpreter gets, and how its container is declared."""

from __future__ import annotations

from dataclasses import dataclass

from tools.code_interpreter import CodeInterpreter, choose_files, is_data_file


@dataclass(frozen=True)
class File:
    name: str
    size: int


def test_the_newest_files_that_fit_are_chosen_and_a_big_one_does_not_block_smaller_ones() -> None:
    files = [File("new.csv", 40), File("huge.xlsx", 100), File("old.json", 50), File("older.csv", 20)]
    kept, left = choose_files(files, max_files=10, max_bytes=100)
    assert [f.name for f in kept] == ["new.csv", "old.json"]
    assert [f.name for f in left] == ["huge.xlsx", "older.csv"]


def test_at_most_max_files_are_chosen() -> None:
    files = [File(f"{n}.csv", 1) for n in range(5)]
    kept, left = choose_files(files, max_files=3, max_bytes=1000)
    assert [f.name for f in kept] == ["0.csv", "1.csv", "2.csv"] and len(left) == 2


def test_data_files_are_known_by_extension() -> None:
    assert all(is_data_file(n) for n in ("a.csv", "B.XLSX", "c.tsv", "d.json", "e.jsonl", "f.xlsm"))
    assert not any(is_data_file(n) for n in ("a.txt", "csv", "report.pdf", "x.csv.exe"))


def test_the_container_lists_the_uploaded_files_and_chat_completions_has_no_code_interpreter() -> None:
    assert CodeInterpreter().declaration("responses") == {"type": "code_interpreter", "container": {"type": "auto"}}
    assert CodeInterpreter(["file-1", "file-2"]).declaration("responses") == {
        "type": "code_interpreter", "container": {"type": "auto", "file_ids": ["file-1", "file-2"]},
    }
    assert CodeInterpreter(["file-1"]).declaration("chat_completions") is None
