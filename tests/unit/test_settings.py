"""Settings layers, validation, and the modal's Block Kit (pure)."""

from __future__ import annotations

import time

import pytest

from settings import (
    Settings,
    describe_changes,
    is_reasoning_model,
    overrides,
    resolve,
    validate,
)
from settings_modal import (
    InvalidMetadata,
    ModalContext,
    build_view,
    read_context,
    read_state,
    sign_context,
    signing_key,
)
from tests.helpers import view_state

MODELS = ("gpt-5.5", "gpt-4.1")
BASE = Settings(model="gpt-5.5")


def test_layers_apply_in_order_and_invalid_stored_values_are_ignored() -> None:
    person = {"model": "gpt-4.1", "temperature": 0.2}
    thread = {"temperature": 1.5, "model": "gpt-retired"}
    settings = resolve(BASE, person, thread, available_models=MODELS)
    assert settings.model == "gpt-4.1"  # the thread's retired model falls back to the layer below
    assert settings.temperature == 1.5


def test_only_differences_are_stored() -> None:
    assert overrides({**BASE.as_dict(), "verbosity": "high"}, BASE) == {"verbosity": "high"}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"model": "nope"}, "model"),
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": "2.5"}, "temperature"),
        ({"reasoning_effort": "max"}, "reasoning_effort"),
        ({"custom_instructions": "x" * 3001}, "custom_instructions"),
        ({"image_size": "10x10"}, "image_size"),
    ],
)
def test_validation_names_the_field(raw: dict, field: str) -> None:
    values, errors = validate(raw, MODELS)
    assert list(errors) == [field] and values == {}


def test_reasoning_models_and_changes() -> None:
    prefixes = ("gpt-5", "o3")
    assert is_reasoning_model("gpt-5.5-mini", prefixes)
    assert not is_reasoning_model("gpt-5-chat-latest", prefixes)
    assert not is_reasoning_model("gpt-4.1", prefixes)
    after = Settings(model="gpt-4.1", web_search=True, custom_instructions="be brief")
    assert describe_changes(BASE, after) == [
        "Model: gpt-5.5 → gpt-4.1", "Custom instructions: updated", "Web search: on",
    ]


def test_view_follows_the_model_and_reads_back() -> None:
    reasoning = build_view(BASE, MODELS, reasoning=True, metadata="m")
    ids = [b["block_id"] for b in reasoning["blocks"]]
    assert "reasoning_effort" in ids and "temperature" not in ids and "scope" not in ids
    plain = build_view(BASE, MODELS, reasoning=False, metadata="m", scope="thread", scopes=("thread", "user"))
    ids = [b["block_id"] for b in plain["blocks"]]
    assert ids[0] == "scope" and "temperature" in ids and "verbosity" not in ids
    raw = read_state(view_state(plain, temperature="0.4", features=["web_search"], scope="user"))
    assert raw["temperature"] == "0.4" and raw["scope"] == "user"
    assert raw["web_search"] is True and raw["streaming"] is False


def test_metadata_is_signed_bound_to_the_person_and_expires() -> None:
    key = signing_key("xoxb-1")
    now = time.time()
    context = ModalContext("U1", now, "C1", "1.1")
    token = sign_context(context, key)
    assert read_context(token, key, "U1", now) == context
    for bad, user, when in [
        (token[:-1] + ("0" if token[-1] != "0" else "1"), "U1", now),  # tampered
        (token, "U2", now),  # someone else
        (token, "U1", now + 3 * 86400),  # stale
        (sign_context(context, signing_key("xoxb-other")), "U1", now),  # another install
        ("garbage", "U1", now),
    ]:
        with pytest.raises(InvalidMetadata):
            read_context(bad, key, user, when)
