"""Shared documents reach the model; unreadable ones get a specific reply and the rest is answered."""

from __future__ import annotations

from aiohttp import web

import base64
import datetime
import io

from PIL import Image

from tests.documents import (
    encrypt_office,
    make_ccitt_scan,
    make_docx,
    make_eml,
    make_pdf,
    make_pptx,
    make_scanned_pdf,
    make_xlsx,
    make_zip_bomb,
)
from tests.fakes.openai import FakeOpenAI
from tests.fakes.slack import FakeSlack
from tests.helpers import wait_replies

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"


async def test_pdf_and_docx_text_reach_the_model_and_stay_for_follow_ups(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    pdf = slack.add_file("report.pdf", make_pdf(["Quarterly summary", "Revenue grew by 17 percent"]), PDF)
    word = slack.add_file("plan.docx", make_docx(["The plan"], [["Owner", "Task"], ["Dana", "Ship v2"]]), DOCX)
    root = await slack.user_says("U0ALICE", "D0ALICE", "compare these", files=[pdf, word])
    await wait_replies(slack, "D0ALICE", root, timeout=20)
    await app.processor.wait_idle()

    [turn] = openai.responses_requests()[0]["input"]
    assert turn["content"].startswith("Alice: compare these")
    assert "=== DOCUMENT: report.pdf (2 pages) ===" in turn["content"]
    assert "--- page 2 ---\nRevenue grew by 17 percent" in turn["content"]
    assert "Dana | Ship v2" in turn["content"]
    assert all(authorized for _, authorized in slack.downloads)

    downloads = len(slack.downloads)
    await slack.user_says("U0ALICE", "D0ALICE", "who owns the task?", thread_ts=root)
    await wait_replies(slack, "D0ALICE", root, count=2)
    follow_up = openai.responses_requests()[1]["input"]
    assert "Dana | Ship v2" in follow_up[0]["content"]  # from the stored thread
    assert len(slack.downloads) == downloads  # not downloaded again


async def test_unreadable_files_get_specific_replies_while_the_question_is_answered(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(MAX_FILE_MB="1")
    files = [
        slack.add_file("secret.pdf", make_pdf(["x"], password="pw"), PDF),
        slack.add_file("broken.pdf", b"%PDF-1.4 garbage", PDF),
        slack.add_file("bomb.docx", make_zip_bomb(), DOCX),
        slack.add_file("huge.csv", b"a,b\n" * 300_000, "text/csv"),
        slack.add_file("ok.txt", b"the readable one", "text/plain"),
        slack.add_file("locked.xlsx", encrypt_office(make_xlsx({"S": [["x"]]})), XLSX),
        slack.add_file("talk.key", b"a Keynote file", "application/x-iwork-keynote-sffkey"),
    ]
    ts = await slack.user_says("U0ALICE", "D0ALICE", "what can you read?", files=files)

    [text] = await wait_replies(slack, "D0ALICE", ts, timeout=20)

    assert text.startswith("You said: Alice: what can you read?")
    assert "I couldn't read secret.pdf: it is password-protected." in text
    assert "I couldn't read broken.pdf: the file is damaged" in text
    assert "I couldn't read bomb.docx: it would expand to an unreasonable size" in text
    assert "I couldn't read huge.csv: it is 1.1 MB, over the 1 MB limit." in text
    assert "I couldn't read locked.xlsx: it is password-protected." in text
    assert ("I couldn't read talk.key: I can't read this kind of file yet (PDF, Word (.docx), Excel (.xlsx, .xlsm), "
            "PowerPoint (.pptx), CSV and TSV, web pages (.html), e-mails (.eml), text files, images, and voice "
            "clips and audio (.m4a, .mp3, .wav, .webm, .ogg) work).") in text
    assert "the readable one" in openai.responses_requests()[0]["input"][0]["content"]
    huge = files[3]["id"]
    assert all(file_id != huge for file_id, _ in slack.downloads)  # refused before downloading


async def test_only_unreadable_files_get_the_reasons_without_a_model_call(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot()
    scan = slack.add_file("scan.pdf", make_pdf([""]), PDF)
    ts = await slack.user_says("U0ALICE", "D0ALICE", "", files=[scan])

    [text] = await wait_replies(slack, "D0ALICE", ts, timeout=20)

    assert "I couldn't read scan.pdf: it has no text layer" in text
    assert openai.responses_requests() == []


async def test_the_loop_stays_responsive_while_a_long_pdf_is_parsed(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot()
    pages = [f"Page {i} " + "words in a long report " * 40 for i in range(300)]
    pdf = slack.add_file("long.pdf", make_pdf(pages), PDF)
    ts = await slack.user_says("U0ALICE", "D0ALICE", "summarise", files=[pdf])
    await slack.wait_for(lambda: any("Reading long.pdf" in (m.get("text") or "") for m in slack.bot_messages("D0ALICE")), 10)

    # While the worker parses, other people are acked and answered at once.
    latencies = []
    for _ in range(5):
        other = await slack.user_says("U0BOB", "D0BOB", "quick one")
        envelope = list(slack.envelopes)[-1]
        latencies.append((await slack.wait_for_ack(envelope)).latency)
        await wait_replies(slack, "D0BOB", other, timeout=5)
    await wait_replies(slack, "D0ALICE", ts, timeout=60)

    assert max(latencies) < 0.25
    [alice] = [r for r in openai.responses_requests() if r["input"][0]["content"].startswith("Alice")]
    content = alice["input"][0]["content"]
    assert "=== DOCUMENT: long.pdf (300 pages) ===" in content
    assert "the rest is cut: the document is longer than 200,000 characters" in content


async def test_a_parse_over_the_time_limit_is_killed_and_reported(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot(DOCUMENT_TIMEOUT_SECONDS="0.01")
    pdf = slack.add_file("slow.pdf", make_pdf(["anything"]), PDF)
    ts = await slack.user_says("U0ALICE", "D0ALICE", "read it", files=[pdf])

    [text] = await wait_replies(slack, "D0ALICE", ts, timeout=20)

    assert "I couldn't read slow.pdf: it took longer than 0.01 seconds to read." in text
    assert text.startswith("You said: Alice: read it")  # the question is still answered


async def test_a_scanned_pdf_reaches_the_model_as_page_images(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot()
    scan = slack.add_file("contract-scan.pdf", make_scanned_pdf(pages=2), PDF)
    ts = await slack.user_says("U0ALICE", "D0ALICE", "what does this say?", files=[scan])

    [text] = await wait_replies(slack, "D0ALICE", ts, timeout=20)

    assert text.startswith("You said: Alice: what does this say?")
    [turn] = openai.responses_requests()[0]["input"]
    parts = turn["content"]
    assert "scanned document of 2 pages" in parts[0]["text"]
    images = [p for p in parts if p["type"] == "input_image"]
    assert len(images) == 2 and all(p["image_url"].startswith("data:image/png;base64,") for p in images)


async def test_the_bot_token_never_goes_to_a_host_that_is_not_slack(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    seen: list[dict[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(text="secret notes")

    elsewhere = web.Application()
    elsewhere.router.add_get("/{name}", record)
    runner = web.AppRunner(elsewhere)
    await runner.setup()
    # Another host, and the fake Slack's own host on another port: neither is the configured API.
    sites = [web.TCPSite(runner, host, 0) for host in ("127.0.0.2", "127.0.0.1")]
    for site in sites:
        await site.start()
    other_host, same_host = (
        f"http://{h}:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        for h, site in zip(("127.0.0.2", "127.0.0.1"), sites)
    )

    def hostile(file_id: str, name: str, url: str) -> dict[str, object]:
        return {"id": file_id, "name": name, "mimetype": "text/plain", "size": 12,
                "url_private": url, "url_private_download": url}

    try:
        await start_bot()
        files = [
            hostile("F0EVIL", "notes.txt", f"{other_host}/notes.txt"),
            hostile("F0PORT", "port.txt", f"{same_host}/port.txt"),
            hostile("F0HTTP", "plain.txt", "http://files.slack.com/files-pri/T0/plain.txt"),
            hostile("F0ODD", "odd.txt", "https://[files.slack.com/odd.txt"),
        ]
        ts = await slack.user_says("U0ALICE", "D0ALICE", "read my notes", files=files)
        [text] = await wait_replies(slack, "D0ALICE", ts)
    finally:
        await runner.cleanup()

    assert seen == []  # not even a request without the token
    for name in ("notes.txt", "port.txt", "plain.txt", "odd.txt"):
        assert f"I couldn't read {name}: its link is not Slack's file server, so I did not download it" in text


async def test_a_workbook_a_deck_and_an_email_reach_the_model_and_stay_for_follow_ups(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    app = await start_bot()
    book = make_xlsx(
        {"Budget": [["Project", "Cost", "Due"], ["Falcon", 0.1, datetime.date(2026, 3, 31)], ["Heron", 0.2, None]],
         "Notes": []},
        formulas={"Budget": ("B4", "=B2+B3", 0.30000000000000004)},
    )
    files = [
        slack.add_file("budget.xlsx", book, XLSX),
        slack.add_file("launch.pptx", make_pptx(), PPTX),
        slack.add_file("thread.eml", make_eml(), "message/rfc822"),
    ]
    root = await slack.user_says("U0ALICE", "D0ALICE", "summarise all three", files=files)
    await wait_replies(slack, "D0ALICE", root, timeout=20)
    await app.processor.wait_idle()

    [turn] = openai.responses_requests()[0]["input"]
    content = turn["content"]
    assert "=== DOCUMENT: budget.xlsx ===\n--- sheet 1: Budget ---\n| Project | Cost | Due |\n| --- | --- | --- |" in content
    assert "| Falcon | 0.1 | 2026-03-31 |\n| Heron | 0.2 |  |\n|  | 0.3 |  |" in content  # the cached sum
    assert "--- sheet 2: Notes ---\n(empty)" in content
    assert "--- slide 2: Risks ---\nSupplier delay\nBudget overrun\nNotes: Mention the backup supplier in Lisbon" in content
    assert "Owner | Task\nDana | Ship v2" in content
    assert "Subject: Falcon budget, v2" in content and "Attachments: budget.pdf (application/pdf, 2 KB)" in content
    assert "SECRET-ATTACHMENT-CONTENT" not in content

    await slack.user_says("U0ALICE", "D0ALICE", "who is in Lisbon?", thread_ts=root)
    await wait_replies(slack, "D0ALICE", root, count=2)
    follow_up = openai.responses_requests()[1]["input"][0]["content"]
    assert "Mention the backup supplier in Lisbon" in follow_up and "| Falcon | 0.1 |" in follow_up


async def test_a_one_bit_fax_scan_reaches_the_model_as_a_rendered_page(
    slack: FakeSlack, openai: FakeOpenAI, start_bot
):
    await start_bot()
    scan = slack.add_file("signed.pdf", make_ccitt_scan(pages=1), PDF)  # CCITT G4, 1 bit per pixel
    ts = await slack.user_says("U0ALICE", "D0ALICE", "is it signed?", files=[scan])

    [text] = await wait_replies(slack, "D0ALICE", ts, timeout=20)

    assert text.startswith("You said: Alice: is it signed?")
    [turn] = openai.responses_requests()[0]["input"]
    parts = turn["content"]
    assert "scanned document of 1 pages" in parts[0]["text"]
    [image] = [p for p in parts if p["type"] == "input_image"]
    assert image["image_url"].startswith("data:image/png;base64,")
    page = Image.open(io.BytesIO(base64.b64decode(image["image_url"].split(",", 1)[1])))
    assert page.size == (1237, 1600)
    assert 0 < page.convert("L").histogram()[0] < page.width * page.height  # black ink on white
