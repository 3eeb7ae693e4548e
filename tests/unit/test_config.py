"""Configuration: defaults, validation, one clear line per problem."""

from __future__ import annotations

import os
import socket

import pytest

from config import ConfigError, load_config

VALID = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "OPENAI_API_KEY": "sk-1"}


def test_defaults() -> None:
    config = load_config(VALID)
    assert config.slack_api_url == "https://slack.com/api/"
    assert config.openai_base_url is None
    assert config.openai_timeout_seconds == 305
    assert config.thread_busy_policy == "reject"
    assert config.shutdown_grace_seconds == 10
    assert config.database_url == "sqlite:///data/bot.db"
    assert config.sqlite_path == "data/bot.db"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"SLACK_BOT_TOKEN": "xoxp-user", "OPENAI_TIMEOUT_SECONDS": "-1",
                     "THREAD_BUSY_POLICY": "wait", "SLACK_API_URL": "nope"})
    problems = caught.value.problems
    assert len(problems) == 6
    assert problems[0].startswith("SLACK_BOT_TOKEN must start with 'xoxb-'")
    assert any(p.startswith("SLACK_APP_TOKEN is missing") and ".env.example" in p for p in problems)
    assert any(p.startswith("OPENAI_TIMEOUT_SECONDS=-1 is out of range") for p in problems)
    assert any(p.startswith("THREAD_BUSY_POLICY='wait' is not one of") for p in problems)
    assert any(p.startswith("SLACK_API_URL='nope'") for p in problems)


def test_empty_values_mean_unset() -> None:
    config = load_config({**VALID, "OPENAI_BASE_URL": "", "OPENAI_MODEL": "  "})
    assert config.openai_base_url is None
    assert config.openai_model == "gpt-5.5"


def test_api_url_gets_a_trailing_slash_and_numbers_parse() -> None:
    config = load_config({**VALID, "SLACK_API_URL": "http://127.0.0.1:9/api",
                          "OPENAI_TIMEOUT_SECONDS": "2.5", "THREAD_BUSY_POLICY": "QUEUE"})
    assert config.slack_api_url == "http://127.0.0.1:9/api/"
    assert config.openai_timeout_seconds == 2.5
    assert config.thread_busy_policy == "queue"


def test_the_instance_is_named_after_the_host_and_process_unless_set() -> None:
    assert load_config(VALID).instance_name == f"{socket.gethostname()}:{os.getpid()}"
    assert load_config({**VALID, "INSTANCE_NAME": "bot-eu-1"}).instance_name == "bot-eu-1"
    with pytest.raises(ConfigError, match="INSTANCE_NAME must be at most 100 printable characters"):
        load_config({**VALID, "INSTANCE_NAME": "x" * 101})


def test_postgresql_urls_pick_postgresql_without_backups_by_the_bot() -> None:
    for url in ("postgresql://bot:s3cret@db.internal:5432/bot", "postgres://bot@db/bot"):
        config = load_config({**VALID, "DATABASE_URL": url, "DATABASE_POOL_SIZE": "4"})
        assert (config.database_engine, config.database_pool_size) == ("postgresql", 4)
        assert config.sqlite_path is None and config.backup_path is None  # pg_dump's job
    assert "s3cret" in load_config({**VALID, "DATABASE_URL": "postgresql://bot:s3cret@db/bot"}).secrets
    assert load_config(VALID).database_pool_size == 10 and load_config(VALID).database_engine == "sqlite"


def test_database_problems_are_one_line_each_and_never_show_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({**VALID, "DATABASE_URL": "postgresql://bot:s3cret@db:99999/bot", "DATABASE_POOL_SIZE": "0"})
    [url, pool] = caught.value.problems
    assert url.startswith("DATABASE_URL='postgresql://bot:***@db:99999/bot' is not a valid PostgreSQL URL")
    assert "s3cret" not in url
    assert pool.startswith("DATABASE_POOL_SIZE=0 is out of range")
    for url, problem in (("postgresql://db.internal", "names no database"), ("mysql://db/bot", "use sqlite:///")):
        with pytest.raises(ConfigError, match=problem):
            load_config({**VALID, "DATABASE_URL": url})


def test_access_lists_budget_and_data_care() -> None:
    config = load_config({**VALID, "ALLOWED_USER_IDS": "U1, U2", "ADMIN_USER_IDS": "U9",
                          "DAILY_TOKEN_BUDGET": "50000", "DATABASE_URL": "sqlite:////srv/bot/bot.db"})
    assert config.allowed_user_ids == ("U1", "U2") and config.admin_user_ids == ("U9",)
    assert config.allowed_channel_ids == ()
    assert config.daily_token_budget == 50000
    assert config.backup_path == "/srv/bot/backups"  # beside the database by default
    assert load_config({**VALID, "BACKUP_KEEP": "0"}).backup_path is None
    assert load_config({**VALID, "BACKUP_DIR": "/var/backups/bot"}).backup_path == "/var/backups/bot"


def test_retention_must_outlast_in_memory_thread_state() -> None:
    with pytest.raises(ConfigError, match="RETENTION_DAYS must be longer than THREAD_IDLE_SECONDS"):
        load_config({**VALID, "RETENTION_DAYS": "0.01", "THREAD_IDLE_SECONDS": "3600"})
    assert load_config({**VALID, "RETENTION_DAYS": "30"}).retention_days == 30


def test_suggested_prompts() -> None:
    assert len(load_config(VALID).suggested_prompts) == 4
    assert load_config({**VALID, "SUGGESTED_PROMPTS": "a; b ;"}).suggested_prompts == ("a", "b")
    assert load_config({**VALID, "SUGGESTED_PROMPTS": "None"}).suggested_prompts == ()
    with pytest.raises(ConfigError, match="at most 4"):
        load_config({**VALID, "SUGGESTED_PROMPTS": "1;2;3;4;5"})


def test_library_log_level() -> None:
    assert load_config(VALID).library_log_level == "INFO"
    assert load_config({**VALID, "LIBRARY_LOG_LEVEL": "Debug"}).library_log_level == "DEBUG"
    with pytest.raises(ConfigError, match="LIBRARY_LOG_LEVEL='verbose' is not one of"):
        load_config({**VALID, "LIBRARY_LOG_LEVEL": "verbose"})
def test_bounded_work_defaults_and_limits() -> None:
    config = load_config(VALID)
    assert config.max_files_per_message == 10 and config.max_image_context_mb == 8
    assert config.turn_timeout_seconds == config.openai_timeout_seconds + 60
    assert load_config({**VALID, "OPENAI_TIMEOUT_SECONDS": "30"}).turn_timeout_seconds == 90
    tuned = load_config({**VALID, "OPENAI_TIMEOUT_SECONDS": "30", "TURN_TIMEOUT_SECONDS": "30",
                         "MAX_FILES_PER_MESSAGE": "3", "MAX_IMAGE_CONTEXT_MB": "2.5"})
    assert (tuned.turn_timeout_seconds, tuned.max_files_per_message, tuned.max_image_context_mb) == (30, 3, 2.5)


def test_the_turn_deadline_may_not_be_shorter_than_the_model_call() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({**VALID, "OPENAI_TIMEOUT_SECONDS": "120", "TURN_TIMEOUT_SECONDS": "60",
                     "MAX_FILES_PER_MESSAGE": "0"})
    problems = caught.value.problems
    assert any(p.startswith("TURN_TIMEOUT_SECONDS=60 must be at least OPENAI_TIMEOUT_SECONDS (120)") for p in problems)
    assert any(p.startswith("MAX_FILES_PER_MESSAGE=0 is out of range") for p in problems)


def test_metrics_and_health_need_ports_of_their_own() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({**VALID, "METRICS_PORT": "9100", "HEALTH_PORT": "9100"})
    assert any("METRICS_PORT must differ from HEALTH_PORT" in p for p in raised.value.problems)
    config = load_config({**VALID, "METRICS_PORT": "9100", "METRICS_HOST": "0.0.0.0"})
    assert (config.metrics_port, config.metrics_host) == (9100, "0.0.0.0")
