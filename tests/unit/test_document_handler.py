"""Extraction rules, run in-process (the worker process is covered by the integration tests)."""

from __future__ import annotations

import base64

import pytest

from document_handler import DocumentError, Limits, extract, kind_of, worker_environment
from image_url_handler import sniff_image
from tests.documents import make_docx, make_pdf, make_scanned_pdf, make_zip_bomb

LIMITS = Limits(max_pages=50, max_chars=10_000)


def test_pdf_pages_are_marked() -> None:
    result = extract("r.pdf", "application/pdf", make_pdf(["First page text", "Second page text"]), LIMITS)
    assert result.pages == 2
    assert "--- page 2 ---\nSecond page text" in result.text


def test_docx_keeps_tables_in_document_order() -> None:
    data = make_docx(["Intro paragraph"], [["Name", "Budget"], ["Falcon", "42k"]], after="Closing words")
    text = extract("plan.docx", "", data, LIMITS).text
    assert text.split("\n") == ["Intro paragraph", "Name | Budget", "Falcon | 42k", "Closing words"]


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("secret.pdf", make_pdf(["hidden"], password="pw"), "password-protected"),
        ("broken.pdf", b"%PDF-1.7 this is not really a pdf", "damaged"),
        ("scan.pdf", make_pdf([""]), "no text layer"),
        ("bomb.docx", make_zip_bomb(), "zip bomb"),
        ("broken.docx", b"PK\x03\x04 nope", "damaged"),
        ("empty.txt", b"", "empty"),
        ("blob.log", b"\x00\x01\x02binary", "binary"),
        ("photo.heic", b"data", "kind of file"),
    ],
)
def test_unreadable_files_say_why(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(DocumentError, match=reason):
        extract(name, "", data, LIMITS)


def test_long_text_is_cut_with_a_visible_note() -> None:
    result = extract("big.csv", "text/csv", ("a,b\n" * 10_000).encode(), LIMITS)
    assert result.truncated and "the rest is cut" in result.text


def test_text_encodings() -> None:
    assert extract("a.txt", "", "café".encode("utf-16"), LIMITS).text == "café"
    assert extract("a.txt", "", "café".encode("cp1252"), LIMITS).text == "café"
    assert kind_of("main.PY", "") == "text" and kind_of("x", "application/pdf") == "pdf"


def test_a_scanned_pdf_yields_its_page_images() -> None:
    result = extract("scan.pdf", "application/pdf", make_scanned_pdf(pages=7), LIMITS)
    assert result.pages == 7 and "scanned document of 7 pages" in result.text
    assert len(result.images) == 5  # bounded
    mimetype, encoded = result.images[0]
    assert mimetype == "image/png" and sniff_image(base64.b64decode(encoded)) == "image/png"


def test_the_worker_environment_is_an_allow_list() -> None:
    parent = {
        "PATH": "/usr/bin", "LANG": "C.UTF-8", "HOME": "/home/bot", "SLACK_BOT_TOKEN": "xoxb-1",
        "OPENAI_API_KEY": "sk-1", "DATABASE_URL": "sqlite:///data/bot.db",
    }
    assert worker_environment(parent) == {
        "PATH": "/usr/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
    }
