"""The models the settings window offers when AVAILABLE_MODELS is unset: the server's, for chat."""

from __future__ import annotations

from openai_client.events import ErrorKind, ModelError
from openai_client.models import MAX_OFFERED, ModelCatalog, chat_models


def test_only_chat_models_are_offered_sorted_with_the_default_first() -> None:
    ids = ["text-embedding-3-large", "gpt-5.5-mini", "whisper-1", "gpt-image-2", "tts-1", "gpt-5.5",
           "omni-moderation-latest", "llama3.1:8b", "nomic-embed-text", "gpt-4o-transcribe", "gpt-4.1", "gpt-5.5"]
    assert chat_models(ids, "gpt-5.5") == ("gpt-5.5", "gpt-4.1", "gpt-5.5-mini", "llama3.1:8b")
    assert chat_models([], "local") == ("local",)  # the default even when the server lists nothing
    assert len(chat_models([f"m{n:03d}" for n in range(300)], "d")) == MAX_OFFERED  # one Slack select


async def test_the_list_is_the_servers_and_a_failure_keeps_what_was_known() -> None:
    answers: list[object] = [ModelError(ErrorKind.CONNECTION, "down"), ["gpt-5.5", "gpt-4.1"],
                             ModelError(ErrorKind.SERVER, "500")]

    async def fetch() -> list[str]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    catalog = ModelCatalog("gpt-5.5", fetch=fetch)
    await catalog.refresh()
    assert catalog.available() == ("gpt-5.5",) and catalog.accepted() is None  # never known: any is taken
    await catalog.refresh()
    assert catalog.available() == ("gpt-5.5", "gpt-4.1") == catalog.accepted()
    await catalog.refresh()
    assert catalog.available() == ("gpt-5.5", "gpt-4.1")  # the last good list stays


async def test_available_models_set_by_the_admin_are_never_replaced() -> None:
    async def fetch() -> list[str]:
        raise AssertionError("the server is not asked")

    catalog = ModelCatalog("gpt-5.5", ("gpt-5.5", "gpt-4.1"), fetch)
    await catalog.refresh()
    assert catalog.configured and catalog.available() == ("gpt-5.5", "gpt-4.1") == catalog.accepted()
