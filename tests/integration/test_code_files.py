"""Data files people share reach the code interpreter as the files themselves, uploaded once."""

from __future__ import annotations

import pytest

from message_processor.handlers import code_files
from tests.fakes.openai import CodeRun, FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack
from tests.helpers import wait_replies

SALES = b"month,total\n2026-01,120\n2026-02,140\n"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def container(body: dict) -> dict:
    [tool] = [t for t in body["tools"] if t["type"] == "code_interpreter"]
    return tool["container"]


async def test_shared_data_files_are_uploaded_once_and_handed_to_the_code_interpreter(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(ENABLE_CODE_INTERPRETER="true", OPENAI_IMAGE_MODEL="off")
    sales = slack.add_file("sales.csv", SALES, "text/csv")
    book = slack.add_file("plan.xlsx", b"PK\x03\x04 a workbook", XLSX)
    notes = slack.add_file("notes.txt", b"just notes", "text/plain")
    openai.script(Reply(text="Sales grew.", calls=[CodeRun("import pandas")]))
    root = await slack.user_says("U0ALICE", "D0ALICE", "plot this by month", files=[sales, book, notes])
    await wait_replies(slack, "D0ALICE", root)
    await app.processor.wait_idle()

    uploads = openai.uploads()
    assert [(u["filename"], u["data"], u["purpose"]) for u in uploads] == [  # newest first
        ("plan.xlsx", b"PK\x03\x04 a workbook", "user_data"), ("sales.csv", SALES, "user_data"),
    ]  # the text file is read as text only
    assert all(u["expires_at"] - u["created_at"] == 24 * 3600 for u in uploads)
    first = openai.responses_requests()[0]
    assert container(first) == {"type": "auto", "file_ids": [uploads[0]["id"], uploads[1]["id"]]}
    assert "(under /mnt/data): plan.xlsx, sales.csv" in first["instructions"]

    # A follow-up gets the same files without uploading them again, plus a new one.
    more = slack.add_file("costs.json", b'{"2026-01": 80}', "application/json")
    await slack.user_says("U0ALICE", "D0ALICE", "and costs?", thread_ts=root, files=[more])
    await wait_replies(slack, "D0ALICE", root, count=2)
    await app.processor.wait_idle()
    assert [u["filename"] for u in openai.uploads()] == ["plan.xlsx", "sales.csv", "costs.json"]
    costs = openai.uploads()[2]["id"]
    assert container(openai.responses_requests()[1])["file_ids"] == [costs, uploads[0]["id"], uploads[1]["id"]]


async def test_what_cannot_be_handed_over_is_said_and_the_answer_goes_on(
    slack: FakeSlack, openai: FakeOpenAI, start_bot, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(code_files, "MAX_TOTAL_BYTES", len(SALES) + 10)
    await start_bot(ENABLE_CODE_INTERPRETER="true", OPENAI_IMAGE_MODEL="off")
    files = [slack.add_file("sales.csv", SALES, "text/csv"),
             slack.add_file("big.csv", SALES * 3, "text/csv")]
    ts = await slack.user_says("U0ALICE", "D0ALICE", "sum them", files=files)

    [text] = await wait_replies(slack, "D0ALICE", ts)
    assert text.startswith("You said: Alice: sum them")
    assert "I couldn't give big.csv to the code interpreter: one answer gets at most 10 files" in text
    assert [u["filename"] for u in openai.uploads()] == ["sales.csv"]
    assert container(openai.responses_requests()[0])["file_ids"] == [openai.uploads()[0]["id"]]

    openai.upload_status = 500
    again = await slack.user_says("U0ALICE", "D0ALICE", "now this one",
                                  files=[slack.add_file("fresh.csv", b"a\n1\n", "text/csv")])
    [text] = await wait_replies(slack, "D0ALICE", again)
    assert "I couldn't give fresh.csv to the code interpreter:" in text
    assert text.startswith("You said: Alice: now this one")


async def test_without_the_code_interpreter_no_file_leaves_for_the_provider(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot(OPENAI_IMAGE_MODEL="off")  # the code interpreter is off by default
    ts = await slack.user_says("U0ALICE", "D0ALICE", "what is in it?",
                               files=[slack.add_file("sales.csv", SALES, "text/csv")])
    await wait_replies(slack, "D0ALICE", ts)
    await app.processor.wait_idle()
    assert openai.uploads() == []
    assert "| month | total |" in openai.responses_requests()[0]["input"][0]["content"]  # read as a table, as before
    assert "code_interpreter" not in openai.declared_tools(openai.responses_requests()[0])
