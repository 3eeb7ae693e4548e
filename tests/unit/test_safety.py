"""Hostile text cannot ping, spoof a link or break the formatter (pure functions)."""

from __future__ import annotations

import random
import re

import pytest

from slack_client.formatting.safety import honest_label, safe_target
from slack_client.formatting.text import SafeMarkdown, markdown_to_mrkdwn, safe_markdown

# A Slack control sequence: a mention, a broadcast, a channel link, or a labelled link.
CONTROL = re.compile(r"<(?:[!@#]|[a-zA-Z][\w+.-]*:[^>]*\|)")

HOSTILE = [
    "[click here](!channel)",
    "[x](!here) [y](!everyone) [z](@U0BOSS) [w](!subteam^S123) [v](#C0GENERAL)",
    "<!channel> <!here|here> <@U0BOSS> <#C0GENERAL> <!subteam^S1|team>",
    "![pic](!channel)",
    "[a](javascript:alert(1)) [b](slack://open) [c](data:text/html,x)",
    "**<!channel>** _<@U1>_ `<!here>`\n```\n<!everyone>\n```",
    "| a | b |\n|---|---|\n| <!channel> | [x](!here) |",
    "> <!channel> quoted",
    "[Q3](!channel).bin",
    "<https://evil.example|https://bank.com>",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_no_control_sequence_survives_either_rendering(text: str):
    assert not CONTROL.search(markdown_to_mrkdwn(text)), markdown_to_mrkdwn(text)
    assert not CONTROL.search(safe_markdown(text)), safe_markdown(text)


def test_only_http_https_and_mailto_become_links():
    assert markdown_to_mrkdwn("[click here](!channel)") == "[click here](!channel)"
    assert safe_markdown("[click here](!channel)") == "[click here] (!channel)"
    assert markdown_to_mrkdwn("[docs](https://python.org/3)") == "<https://python.org/3|docs>"
    assert markdown_to_mrkdwn("[mail](mailto:a@b.org)") == "<mailto:a@b.org|mail>"
    assert safe_markdown("[docs](http://python.org)") == "[docs](http://python.org)"
    assert safe_target("https://a.org/x|y") == "https://a.org/x%7Cy"
    for target in ("!channel", "@U1", "javascript:x", "ftp://a.org", "https:evil", "https://"):
        assert safe_target(target) is None


def test_a_label_naming_another_address_shows_the_real_one():
    assert markdown_to_mrkdwn("[https://bank.com](https://evil.example)") == "<https://evil.example|evil.example>"
    assert markdown_to_mrkdwn("[bank.com](https://evil.example/login)") == "<https://evil.example/login|evil.example>"
    assert safe_markdown("[www.bank.com](https://evil.example)") == "[evil.example](https://evil.example)"
    # Honest labels stay: the same site, plain words, a file name.
    assert honest_label("www.python.org", "https://docs.python.org/3") == "www.python.org"
    assert honest_label("the docs", "https://evil.example") == "the docs"
    assert honest_label("report.pdf", "https://drive.example.com/f/1") == "report.pdf"
    assert honest_label("boss@bank.com", "mailto:boss@evil.example") == "evil.example"


def test_private_use_characters_pass_through_untouched():
    text = "answer \ue0017\ue001 end **bold** `code` \ue000"
    assert markdown_to_mrkdwn(text) == "answer \ue0017\ue001 end *bold* `code` \ue000"


@pytest.mark.parametrize("odd", ["\x00", "\ud800", "\u202e", "\ufeff", "\u200b", "\U0001f600", "&amp;", "\\"])
def test_no_character_breaks_either_rendering(odd: str):
    text = f"a {odd} **b{odd}** [l{odd}](https://x.org/{odd}) `c{odd}`\n| {odd} | x |\n|---|---|\n```\n{odd}\n```"
    assert odd.replace("&", "&amp;") in markdown_to_mrkdwn(text)
    assert odd in safe_markdown(text)


def test_streamed_safe_markdown_only_grows_and_ends_as_the_whole():
    text = "\n".join(HOSTILE) + "\nplain [ok](https://a.org) tail [x](!here)"
    rng = random.Random(7)
    for _ in range(50):
        converter, shown = SafeMarkdown(), ""
        rest = text
        while rest:
            size = rng.randint(1, 9)
            now = converter.feed(rest[:size])
            rest = rest[size:]
            assert now.startswith(shown)
            assert not CONTROL.search(now)
            shown = now
        assert converter.finish() == safe_markdown(text)
        assert converter.finish().startswith(shown)
