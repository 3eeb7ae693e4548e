"""OPENAI_API_STYLE: its setting, the style-dependent model defaults, and what it turns off."""

from __future__ import annotations

import pytest

from config import ConfigError, load_config
from settings import Settings
from settings_modal import build_view

VALID = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "OPENAI_API_KEY": "sk-1"}
CHAT = {**VALID, "OPENAI_API_STYLE": "chat_completions", "OPENAI_MODEL": "llama3.1:8b"}


def test_responses_is_the_default_and_keeps_the_openai_models() -> None:
    config = load_config(VALID)
    assert config.openai_api_style == "responses"
    assert config.openai_image_model == "gpt-image-2" and config.pictures_enabled


def test_chat_completions_turns_pictures_off() -> None:
    config = load_config(CHAT)
    assert config.openai_api_style == "chat_completions"
    assert config.openai_image_model == "" and not config.pictures_enabled


def test_a_set_image_model_wins_in_either_style() -> None:
    config = load_config({**CHAT, "OPENAI_IMAGE_MODEL": "flux"})
    assert config.openai_image_model == "flux" and config.pictures_enabled


@pytest.mark.parametrize("env", [{**VALID, "OPENAI_IMAGE_MODEL": "off"}, {**CHAT, "OPENAI_IMAGE_MODEL": "OFF"},
                                 {**CHAT, "OPENAI_IMAGE_MODEL": "  "}])
def test_off_or_unset_with_chat_means_no_pictures(env: dict[str, str]) -> None:
    assert not load_config(env).pictures_enabled


def test_a_bad_style_is_one_clear_line() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({**VALID, "OPENAI_API_STYLE": "ollama"})
    assert caught.value.problems == [
        "OPENAI_API_STYLE='ollama' is not one of: responses, chat_completions"
    ]
    assert load_config({**VALID, "OPENAI_API_STYLE": "Chat_Completions"}).openai_api_style == "chat_completions"


def features(view: dict) -> list[str]:
    [block] = [b for b in view["blocks"] if b.get("block_id") == "features"]
    return [o["value"] for o in block["element"]["options"]]


def test_the_modal_leaves_web_search_out_when_the_server_has_none() -> None:
    settings = Settings(model="m", web_search=True)
    assert features(build_view(settings, ("m",), False, "meta")) == ["streaming", "web_search", "code_interpreter"]
    view = build_view(settings, ("m",), False, "meta", web_search=False)
    assert features(view) == ["streaming"]
    [block] = [b for b in view["blocks"] if b.get("block_id") == "features"]
    assert [o["value"] for o in block["element"]["initial_options"]] == ["streaming"]
    assert "need OpenAI's Responses API" in block["hint"]["text"]  # the one-line note


def test_transcription_has_one_default_in_either_style() -> None:
    for env in (VALID, CHAT):
        config = load_config(env)
        assert config.openai_transcribe_model == "gpt-4o-mini-transcribe" and config.listening_enabled
    assert load_config({**CHAT, "OPENAI_TRANSCRIBE_MODEL": "whisper-1"}).openai_transcribe_model == "whisper-1"


@pytest.mark.parametrize("value", ["off", "OFF", " Off "])
def test_off_turns_listening_off(value: str) -> None:
    config = load_config({**VALID, "OPENAI_TRANSCRIBE_MODEL": value})
    assert config.openai_transcribe_model == "" and not config.listening_enabled


def test_the_audio_size_limit_is_its_own_setting() -> None:
    assert load_config(VALID).max_audio_mb == 25
    assert load_config({**VALID, "MAX_AUDIO_MB": "100", "MAX_FILE_MB": "5"}).max_audio_mb == 100
    with pytest.raises(ConfigError) as caught:
        load_config({**VALID, "MAX_AUDIO_MB": "0"})
    assert caught.value.problems == ["MAX_AUDIO_MB=0 is out of range: use 0.01 to 1024"]
