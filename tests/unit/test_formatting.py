"""Markdown → mrkdwn and message splitting."""

from __future__ import annotations

import pytest

from slack_client.formatting.text import markdown_to_mrkdwn, split_message


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**bold** and __also__", "*bold* and *also*"),
        ("*italic* and _this_", "_italic_ and _this_"),
        ("***both***", "*_both_*"),
        ("~~gone~~", "~gone~"),
        ("[docs](https://example.com/a?b=1)", "<https://example.com/a?b=1|docs>"),
        ("![chart](https://example.com/c.png)", "<https://example.com/c.png|chart>"),
        ("# Title", "*Title*"),
        ("### **Sub** title ###", "*Sub title*"),
        ("- one\n  * two\n+ three", "• one\n  • two\n• three"),
        ("1. first\n2. second", "1. first\n2. second"),
        ("- [x] done\n- [ ] todo", "☑ done\n☐ todo"),
        ("> quoted", "> quoted"),
        ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
        ("---", "──────────"),
        ("a * b * c", "a * b * c"),
        ("snake_case_name stays", "snake_case_name stays"),
    ],
)
def test_markdown_becomes_mrkdwn(markdown: str, mrkdwn: str) -> None:
    assert markdown_to_mrkdwn(markdown) == mrkdwn


def test_code_is_left_alone() -> None:
    markdown = "Use `**kwargs` here:\n```python\ndef f(**kw):\n    return a < b  # *not italic*\n```"
    assert markdown_to_mrkdwn(markdown) == (
        "Use `**kwargs` here:\n```\ndef f(**kw):\n    return a &lt; b  # *not italic*\n```"
    )


def test_unclosed_fence_mid_stream_is_closed_for_display() -> None:
    assert markdown_to_mrkdwn("Here:\n```js\nconst a = 1") == "Here:\n```\nconst a = 1\n```"


def test_tables_become_aligned_code_blocks() -> None:
    table = "| a | b |\n|---|:-:|\n| 1 | 2 |\n\nafter"
    assert markdown_to_mrkdwn(table) == "```\n| a | b |\n|---|:-:|\n| 1 | 2 |\n```\n\nafter"


def test_short_text_is_one_message() -> None:
    assert split_message("hello", 100) == ["hello"]


def test_split_respects_the_limit_and_prefers_paragraph_breaks() -> None:
    text = "\n\n".join(f"paragraph {i} " + "x" * 60 for i in range(10))
    chunks = split_message(text, 200)
    assert all(len(c) <= 200 for c in chunks)
    assert all(c.startswith("paragraph") for c in chunks)
    assert "\n\n".join(chunks).replace("\n", "") == text.replace("\n", "")


def test_code_block_that_fits_is_never_split() -> None:
    code = "```\n" + "\n".join(f"line {i}" for i in range(15)) + "\n```"
    text = "intro " * 20 + "\n" + code + "\noutro"
    chunks = split_message(text, 150)
    assert all(len(c) <= 150 for c in chunks)
    [with_code] = [c for c in chunks if "line 0" in c]
    assert code in with_code


def test_oversized_code_block_is_closed_and_reopened() -> None:
    code = "```\n" + "\n".join(f"statement_{i}()" for i in range(100)) + "\n```"
    chunks = split_message(code, 300)
    assert len(chunks) > 1
    assert all(len(c) <= 300 and c.startswith("```\n") and c.endswith("\n```") for c in chunks)
    body = "\n".join(c[4:-4] for c in chunks)
    assert body == code[4:-4]


def test_a_single_huge_line_is_wrapped() -> None:
    chunks = split_message("word " * 500, 400)
    assert all(len(c) <= 400 for c in chunks)
    assert " ".join(chunks).split() == ["word"] * 500
