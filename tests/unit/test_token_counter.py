"""Offline token counting and trimming to the context window."""

from __future__ import annotations

import token_counter
from token_counter import context_window, count_tokens, input_budget, trim_turns


def test_counts_offline_with_the_shipped_encoding() -> None:
    assert token_counter._encoding() is not None
    assert count_tokens("hello world") == 2


def test_estimate_when_no_encoding(monkeypatch) -> None:
    monkeypatch.setattr(token_counter, "_encoding", lambda: None)
    assert count_tokens("x" * 400) == 101


def test_context_windows() -> None:
    assert context_window("gpt-5.5") == 400_000
    assert context_window("gpt-4o-mini") == 128_000
    assert context_window("gpt-4.1-mini") == 1_000_000
    assert context_window("llama3:8b") == 128_000
    assert context_window("llama3:8b", override=8192) == 8192
    assert input_budget("llama3:8b", 1000, override=8192) == int(8192 * 0.9) - 1000


def test_trim_keeps_the_newest_turns_that_fit() -> None:
    turns = [f"turn {i} " + "word " * 100 for i in range(10)]
    full = trim_turns("system", turns, budget=100_000)
    assert full.dropped == 0
    budget = full.tokens // 2
    trimmed = trim_turns("system", turns, budget=budget)
    assert 0 < trimmed.dropped < 10
    assert trimmed.tokens <= budget
    assert trim_turns("system", turns[trimmed.kept_from :], budget).dropped == 0


def test_the_newest_turn_is_kept_even_alone_over_budget() -> None:
    trimmed = trim_turns("system", ["old", "word " * 1000], budget=50)
    assert trimmed.kept_from == 1


def test_the_byte_bound_never_undercounts() -> None:
    from token_counter import tokens_at_most

    samples = ["hello world", "x" * 400, "déjà vu 🙂🙂🙂", "東京都の天気は晴れです", "def f(x):\n    return x ** 2\n" * 20]
    for text in samples:
        assert tokens_at_most("", [text]) >= count_tokens(text) + 2 * 4
    assert tokens_at_most("sys", ["a", "b"]) == 3 + 1 + 1 + 3 * 4
