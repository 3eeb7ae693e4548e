"""Configuration: read from the environment once, validated as a whole at start-up.

Pure module: no I/O except what the caller passes in (a mapping of variables, and a reader for
MCP_CONFIG_FILE, which tests replace), so every rule is unit-tested and `main.py` can print
every problem at once instead of failing on the first.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping
from urllib.parse import urlparse, urlsplit, urlunsplit

from settings import IMAGE_QUALITIES, IMAGE_SIZES, REASONING_EFFORTS, VERBOSITIES
from mcp_config import McpConfigError, ServerConfig, load_mcp_config

SETUP_HINT = "see .env.example and docs/slack-app-setup.md"
POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")
# "responses": the Responses API (OpenAI); "chat_completions": servers that only speak
# /v1/chat/completions (Ollama, vLLM, LM Studio, Azure deployments).
API_STYLES = ("responses", "chat_completions")
# OPENAI_IMAGE_MODEL=off turns pictures off (empty means "the style's default", like every setting).
PICTURES_OFF = "off"
# OPENAI_TRANSCRIBE_MODEL=off turns listening to voice clips and audio files off.
LISTENING_OFF = "off"

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant in a Slack workspace. Several people may take part in one "
    "thread; each of their messages starts with the speaker's name. Answer the latest message, "
    "be concise, and use Markdown (headings, lists, code blocks) where it helps."
)


class ConfigError(Exception):
    """Raised with every problem found, one human-readable line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Config:
    slack_bot_token: str
    slack_app_token: str
    openai_api_key: str
    slack_api_url: str = "https://slack.com/api/"
    openai_base_url: str | None = None
    openai_api_style: str = "responses"
    openai_model: str = "gpt-5.5"
    # A current GPT image model (gpt-image-1 is shut down), for the picture tool.
    # An empty image model means pictures are off (the default of the chat_completions style).
    openai_image_model: str = "gpt-image-2"
    # Transcribes voice clips and audio files (`/v1/audio/transcriptions`); empty: listening off.
    # The same default in both API styles: many local servers serve transcription too (whisper).
    openai_transcribe_model: str = "gpt-4o-mini-transcribe"
    openai_timeout_seconds: float = 305.0
    openai_max_retries: int = 2
    # The ceiling of the adaptive model-call limit (the SDK's HTTP pool holds 1000 connections).
    max_concurrent_requests: int = 1000
    max_concurrent_per_person: int = 3
    max_tool_rounds: int = 8
    openai_max_output_tokens: int = 8192
    # 0 means "look the model up in token_counter's table, else a safe default".
    openai_context_window: int = 0
    database_url: str = "sqlite:///data/bot.db"
    # PostgreSQL only: the most connections this process opens (asyncpg's pool).
    database_pool_size: int = 10
    # This process's name in /health and the log ("" until load_config: `<hostname>:<pid>`).
    instance_name: str = ""
    # PostgreSQL (several instances): how long an instance's claim on a message or a thread's
    # turn lasts unless renewed (its heartbeat renews it every quarter of this). A dead
    # instance's work is taken over by another within about 1.25 times this.
    lease_seconds: float = 20.0
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    thread_busy_policy: str = "reject"
    thread_queue_size: int = 3
    shutdown_grace_seconds: float = 10.0
    recovery_window_minutes: float = 10.0
    stats_interval_seconds: float = 60.0
    health_port: int = 0
    # Prometheus metrics at http://METRICS_HOST:METRICS_PORT/metrics (0: off).
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    log_level: str = "INFO"
    # The Slack, OpenAI and HTTP libraries' level (their DEBUG lines print URLs, headers and
    # payloads); never more verbose than log_level (log_redaction.library_level).
    library_log_level: str = "INFO"
    stream_update_seconds: float = 1.0
    progress_update_seconds: float = 5.0
    thread_idle_seconds: float = 3600.0
    slack_max_retries: int = 8
    socket_ping_seconds: float = 5.0
    # Slack's AI surfaces: assistant status + native streaming (edit-in-place where refused),
    # and thumbs up/down under each answer.
    slack_native_streaming: bool = True
    feedback_buttons: bool = True
    slack_unfurl: bool = False
    # Offered when someone opens a new assistant conversation (";"-separated; "none": none).
    suggested_prompts: tuple[str, ...] = (
        "Summarise a document I'll share", "Explain a concept in simple terms",
        "Help me write a message", "Draw a picture for me",
    )
    max_file_mb: float = 25.0
    # OpenAI's own limit for one file to transcribe.
    max_audio_mb: float = 25.0
    max_document_pages: int = 300
    max_document_chars: int = 200_000
    document_timeout_seconds: float = 60.0
    max_context_images: int = 4
    # Settings people can change from Slack (the environment gives the defaults).
    # AVAILABLE_MODELS, the default first; empty: the server's own list (openai_client/models.py).
    available_models: tuple[str, ...] = ()
    reasoning_model_prefixes: tuple[str, ...] = ("gpt-5", "gpt-6", "o1", "o3", "o4")
    default_reasoning_effort: str = "low"
    default_verbosity: str = "medium"
    default_temperature: float = 1.0
    enable_streaming: bool = True
    enable_web_search: bool = False
    enable_code_interpreter: bool = False
    default_image_size: str = "auto"
    default_image_quality: str = "auto"
    settings_slash_command: str = "/ai-settings"
    thread_settings_callback_id: str = "thread_settings"
    # Who may talk to the bot (empty: everyone) and who may change everyone's defaults.
    allowed_user_ids: tuple[str, ...] = ()
    allowed_channel_ids: tuple[str, ...] = ()
    admin_user_ids: tuple[str, ...] = ()
    allow_external_users: bool = False
    # Tokens (input + output) a person may use per UTC day; 0: no limit.
    daily_token_budget: int = 0
    # Data care: an online backup every BACKUP_INTERVAL_HOURS, the newest BACKUP_KEEP kept
    # (0 turns backups off), in BACKUP_DIR (default: `backups/` beside the database file).
    backup_dir: str = ""
    backup_keep: int = 7
    backup_interval_hours: float = 24.0
    # Threads idle for longer than this are deleted with their turns and images; 0 keeps all.
    retention_days: float = 0.0
    # --- Bounded work (see `_bounded_work`): what one turn may download, send and take ---
    max_files_per_message: int = 10
    # Bytes of shared images in one model request (each image is shrunk to fit, or left out).
    max_image_context_mb: float = 8.0
    # Downloads, parsing, link fetches and the model call together; the lock is held no longer.
    turn_timeout_seconds: float = 305.0 + 60.0
    # --- MCP servers (tools/mcp.py): MCP_CONFIG_FILE's servers, read and checked at start-up ---
    mcp_config_file: str = ""
    mcp_servers: tuple[ServerConfig, ...] = ()
    mcp_tool_timeout_seconds: float = 30.0
    mcp_max_result_chars: int = 20_000

    @property
    def database_engine(self) -> str:
        """`sqlite` or `postgresql`, by `DATABASE_URL`'s scheme."""
        return "postgresql" if self.database_url.startswith(POSTGRESQL_SCHEMES) else "sqlite"

    @property
    def sqlite_path(self) -> str | None:
        """The file behind a `sqlite:///` `DATABASE_URL` (`:memory:` allowed, for tests); None for PostgreSQL."""
        if self.database_engine != "sqlite":
            return None
        return self.database_url.removeprefix("sqlite:///")

    @property
    def backup_path(self) -> str | None:
        """Where backups go, or None when they are off, the database is in memory, or it is
        PostgreSQL's (backed up with pg_dump, not by the bot)."""
        path = self.sqlite_path
        if self.backup_keep == 0 or path is None or path == ":memory:":
            return None
        return self.backup_dir or os.path.join(os.path.dirname(path) or ".", "backups")

    @property
    def pictures_enabled(self) -> bool:
        """Whether the server has an images API to draw with (see `OPENAI_IMAGE_MODEL`)."""
        return bool(self.openai_image_model)

    @property
    def listening_enabled(self) -> bool:
        """Whether voice clips and audio files are transcribed (see `OPENAI_TRANSCRIBE_MODEL`)."""
        return bool(self.openai_transcribe_model)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never be logged (see log_redaction.py)."""
        mcp = (secret for server in self.mcp_servers for secret in server.secrets)
        database = urlsplit(self.database_url).password
        return tuple(
            s for s in (self.slack_bot_token, self.slack_app_token, self.openai_api_key, database, *mcp) if s
        )


@dataclass
class _Reader:
    env: Mapping[str, str]
    problems: list[str] = field(default_factory=list)

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def required(self, name: str, what: str, prefix: str | None = None, missing_ok: bool = False) -> str:
        """`missing_ok`: may be absent (console mode needs no Slack), but is checked when set."""
        value = self.raw(name)
        if value is None:
            if not missing_ok:
                self.problems.append(f"{name} is missing: set it to {what} ({SETUP_HINT})")
            return ""
        if prefix and not value.startswith(prefix):
            self.problems.append(f"{name} must start with '{prefix}' ({what}; {SETUP_HINT})")
        return value

    def text(self, name: str, default: str) -> str:
        value = self.raw(name)
        return default if value is None else value.replace("\\n", "\n")

    def off_or_text(self, name: str, default: str, off: str) -> str:
        """A model name; `off` (any case) gives "" (the feature is off), unset the default."""
        value = self.text(name, default)
        return "" if value.lower() == off else value

    def number(self, name: str, default: float, low: float, high: float, cast: Callable = float):
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = cast(value)
        except ValueError:
            kind = "a whole number" if cast is int else "a number"
            self.problems.append(f"{name}={value!r} is not {kind} ({SETUP_HINT})")
            return default
        if not low <= number <= high:
            self.problems.append(f"{name}={value} is out of range: use {low:g} to {high:g}")
            return default
        return number

    def flag(self, name: str, default: bool) -> bool:
        value = (self.raw(name) or "").lower()
        if not value:
            return default
        if value not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            self.problems.append(f"{name}={value!r} is not true or false")
            return default
        return value in ("true", "1", "yes", "on")

    def names(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.raw(name)
        if value is None:
            return default
        return tuple(dict.fromkeys(item.strip() for item in value.split(",") if item.strip()))

    def prompts(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """";"-separated texts, at most four (what Slack shows); "none" for no prompts."""
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() == "none":
            return ()
        prompts = tuple(p.strip() for p in value.split(";") if p.strip())
        if len(prompts) > 4:
            self.problems.append(f"{name} has {len(prompts)} prompts: Slack shows at most 4")
        return prompts[:4]

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = (self.raw(name) or default).lower()
        if value not in choices:
            self.problems.append(f"{name}={value!r} is not one of: {', '.join(choices)}")
            return default
        return value

    def url(self, name: str, default: str | None, schemes: tuple[str, ...]) -> str | None:
        value = self.raw(name)
        if value is None:
            return default
        parsed = urlparse(value)
        if parsed.scheme not in schemes or not parsed.netloc:
            self.problems.append(f"{name}={value!r} is not a valid {'/'.join(schemes)} URL")
            return default
        return value


    def database_url(self, name: str, default: str) -> str:
        """`sqlite:///path` or `postgresql://user:password@host:port/database` (`postgres://` too)."""
        value = self.raw(name) or default
        if value.startswith(POSTGRESQL_SCHEMES):
            shown = _without_password(value)  # problems are printed: never the password
            try:
                parts = urlsplit(value)
                _ = parts.port  # raises on a port that is not a number, or out of range
            except ValueError as exc:
                self.problems.append(f"{name}={shown!r} is not a valid PostgreSQL URL: {exc}")
                return default
            if not parts.path.strip("/") and "dbname=" not in parts.query and "database=" not in parts.query:
                self.problems.append(
                    f"{name}={shown!r} names no database: use postgresql://user:password@host:port/database"
                )
                return default
            return value
        if not value.startswith("sqlite:///") or value == "sqlite:///":
            self.problems.append(
                f"{name}={value!r}: use sqlite:///path/to/file.db or postgresql://user:password@host:port/database"
            )
            return default
        return value


def default_instance_name() -> str:
    """`<hostname>:<pid>`: tells instances apart on one machine and across machines."""
    return f"{socket.gethostname()}:{os.getpid()}"


MAX_INSTANCE_NAME = 100


def _instance_name(r: _Reader) -> str:
    name = r.text("INSTANCE_NAME", "") or default_instance_name()
    if len(name) > MAX_INSTANCE_NAME or not name.isprintable():
        r.problems.append(f"INSTANCE_NAME must be at most {MAX_INSTANCE_NAME} printable characters")
        return default_instance_name()
    return name


def _without_password(url: str) -> str:
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return "[a URL that cannot be parsed]"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{parts.netloc.rsplit('@', 1)[1]}"))


# How much longer than the model call a whole turn may take by default (downloads, parsing, links).
TURN_MARGIN_SECONDS = 60.0


def _bounded_work(r: _Reader, config: Config) -> Config:
    """Limits on one turn's work: files per message, image bytes per request, one deadline.

    The turn deadline covers the model call too, so it may not be shorter than that call's limit.
    """
    turn = r.number(
        "TURN_TIMEOUT_SECONDS", config.openai_timeout_seconds + TURN_MARGIN_SECONDS, 0.1, 7200
    )
    if turn < config.openai_timeout_seconds:
        r.problems.append(
            f"TURN_TIMEOUT_SECONDS={turn:g} must be at least OPENAI_TIMEOUT_SECONDS "
            f"({config.openai_timeout_seconds:g}): the turn deadline includes the model call"
        )
    return replace(
        config,
        max_files_per_message=r.number("MAX_FILES_PER_MESSAGE", Config.max_files_per_message, 1, 100, int),
        max_image_context_mb=r.number("MAX_IMAGE_CONTEXT_MB", Config.max_image_context_mb, 0.1, 50),
        turn_timeout_seconds=turn,
    )


def _read_file(path: str) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read()


def _mcp(r: _Reader, config: Config, read_text: Callable[[str], str]) -> Config:
    """MCP_CONFIG_FILE's servers (`${VAR}`s from the same environment) and the call limits.

    A file that cannot be read or has problems stops the bot like any setting: one line each.
    """
    path = r.text("MCP_CONFIG_FILE", "")
    servers: tuple[ServerConfig, ...] = ()
    if path:
        try:
            servers = tuple(load_mcp_config(read_text(path), r.env))
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            r.problems.append(f"MCP_CONFIG_FILE={path!r} cannot be read: {reason}")
        except McpConfigError as exc:
            r.problems.extend(f"MCP_CONFIG_FILE={path!r}: {problem}" for problem in exc.problems)
    return replace(
        config, mcp_config_file=path, mcp_servers=servers,
        mcp_tool_timeout_seconds=r.number("MCP_TOOL_TIMEOUT_SECONDS", Config.mcp_tool_timeout_seconds, 0.1, 3600),
        mcp_max_result_chars=r.number("MCP_MAX_RESULT_CHARS", Config.mcp_max_result_chars, 100, 10_000_000, int),
    )


def _style_defaults(config: Config) -> Config:
    """Model defaults that depend on OPENAI_API_STYLE, for the values left unset (empty).

    A Chat Completions server (Ollama, vLLM, …) usually has no images API: there the picture
    tool is off unless OPENAI_IMAGE_MODEL is set.
    """
    chat = config.openai_api_style == "chat_completions"
    image = config.openai_image_model or ("" if chat else Config.openai_image_model)
    return replace(config, openai_image_model="" if image.lower() == PICTURES_OFF else image)


def load_config(
    env: Mapping[str, str], require_slack: bool = True, read_text: Callable[[str], str] = _read_file
) -> Config:
    """Build a `Config` from environment variables or raise `ConfigError` listing every problem.

    `require_slack=False` (console mode, which never talks to Slack) lets the Slack tokens be
    absent; every other rule still applies. `read_text` reads MCP_CONFIG_FILE (the one file
    read here).
    """
    r = _Reader(env)
    no_slack = not require_slack
    # Keyword arguments are evaluated in order: problems are listed as .env.example lists them.
    config = Config(
        slack_bot_token=r.required(
            "SLACK_BOT_TOKEN", "the app's Bot User OAuth Token", "xoxb-", missing_ok=no_slack
        ),
        slack_app_token=r.required(
            "SLACK_APP_TOKEN", "an app-level token with connections:write", "xapp-", missing_ok=no_slack
        ),
        openai_api_key=r.required("OPENAI_API_KEY", "your OpenAI API key"),
        slack_api_url=(r.url("SLACK_API_URL", None, ("http", "https")) or Config.slack_api_url).rstrip("/") + "/",
        # An empty OPENAI_BASE_URL must mean "unset": the SDK would otherwise send requests to ''.
        openai_base_url=r.url("OPENAI_BASE_URL", None, ("http", "https")),
        openai_api_style=r.choice("OPENAI_API_STYLE", Config.openai_api_style, API_STYLES),
        openai_model=r.text("OPENAI_MODEL", Config.openai_model),
        # Empty when unset: the defaults depend on the API style (`_style_defaults`).
        openai_image_model=r.text("OPENAI_IMAGE_MODEL", ""),
        openai_transcribe_model=r.off_or_text("OPENAI_TRANSCRIBE_MODEL", Config.openai_transcribe_model, LISTENING_OFF),
        openai_timeout_seconds=r.number("OPENAI_TIMEOUT_SECONDS", Config.openai_timeout_seconds, 0.1, 3600),
        openai_max_retries=r.number("OPENAI_MAX_RETRIES", Config.openai_max_retries, 0, 10, int),
        max_concurrent_requests=r.number("MAX_CONCURRENT_REQUESTS", Config.max_concurrent_requests, 1, 10_000, int),
        max_concurrent_per_person=r.number(
            "MAX_CONCURRENT_PER_PERSON", Config.max_concurrent_per_person, 1, 10_000, int
        ),
        max_tool_rounds=r.number("MAX_TOOL_ROUNDS", Config.max_tool_rounds, 1, 50, int),
        openai_max_output_tokens=r.number(
            "OPENAI_MAX_OUTPUT_TOKENS", Config.openai_max_output_tokens, 16, 1_000_000, int
        ),
        openai_context_window=r.number("OPENAI_CONTEXT_WINDOW", 0, 0, 100_000_000, int),
        database_url=r.database_url("DATABASE_URL", Config.database_url),
        database_pool_size=r.number("DATABASE_POOL_SIZE", Config.database_pool_size, 1, 1000, int),
        instance_name=_instance_name(r),
        lease_seconds=r.number("LEASE_SECONDS", Config.lease_seconds, 1, 600),
        system_prompt=r.text("SYSTEM_PROMPT", DEFAULT_SYSTEM_PROMPT),
        thread_busy_policy=r.choice("THREAD_BUSY_POLICY", Config.thread_busy_policy, ("reject", "queue")),
        thread_queue_size=r.number("THREAD_QUEUE_SIZE", Config.thread_queue_size, 1, 100, int),
        stats_interval_seconds=r.number("STATS_INTERVAL_SECONDS", Config.stats_interval_seconds, 0.1, 86400),
        health_port=r.number("HEALTH_PORT", Config.health_port, 0, 65535, int),
        metrics_port=r.number("METRICS_PORT", Config.metrics_port, 0, 65535, int),
        metrics_host=r.text("METRICS_HOST", Config.metrics_host),
        recovery_window_minutes=r.number("RECOVERY_WINDOW_MINUTES", Config.recovery_window_minutes, 0, 7 * 24 * 60),
        shutdown_grace_seconds=r.number("SHUTDOWN_GRACE_SECONDS", Config.shutdown_grace_seconds, 0, 600),
        log_level=r.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper(),
        library_log_level=r.choice("LIBRARY_LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper(),
        stream_update_seconds=r.number("STREAM_UPDATE_SECONDS", Config.stream_update_seconds, 0.05, 60),
        progress_update_seconds=r.number(
            "PROGRESS_UPDATE_SECONDS", Config.progress_update_seconds, 0.05, 600
        ),
        thread_idle_seconds=r.number("THREAD_IDLE_SECONDS", Config.thread_idle_seconds, 1, 7 * 86400),
        slack_max_retries=r.number("SLACK_MAX_RETRIES", Config.slack_max_retries, 0, 100, int),
        socket_ping_seconds=r.number("SOCKET_PING_SECONDS", Config.socket_ping_seconds, 0.1, 60),
        slack_native_streaming=r.flag("SLACK_NATIVE_STREAMING", Config.slack_native_streaming),
        feedback_buttons=r.flag("FEEDBACK_BUTTONS", Config.feedback_buttons),
        slack_unfurl=r.flag("SLACK_UNFURL", Config.slack_unfurl),
        suggested_prompts=r.prompts("SUGGESTED_PROMPTS", Config.suggested_prompts),
        max_file_mb=r.number("MAX_FILE_MB", Config.max_file_mb, 0.01, 1024),
        max_audio_mb=r.number("MAX_AUDIO_MB", Config.max_audio_mb, 0.01, 1024),
        max_document_pages=r.number("MAX_DOCUMENT_PAGES", Config.max_document_pages, 1, 100_000, int),
        max_document_chars=r.number("MAX_DOCUMENT_CHARS", Config.max_document_chars, 1000, 10_000_000, int),
        max_context_images=r.number("MAX_CONTEXT_IMAGES", Config.max_context_images, 0, 50, int),
        document_timeout_seconds=r.number("DOCUMENT_TIMEOUT_SECONDS", Config.document_timeout_seconds, 0.01, 3600),
    )
    config = _style_defaults(config)
    config = _bounded_work(r, config)
    config = _mcp(r, config, read_text)
    models = r.names("AVAILABLE_MODELS", ())
    # The default model is always selectable, and first when the list does not name it. Unset:
    # the server's own list (openai_client/models.py).
    if models and config.openai_model not in models:
        models = (config.openai_model, *models)
    command = r.text("SETTINGS_SLASH_COMMAND", Config.settings_slash_command)
    if not command.startswith("/") or " " in command:
        r.problems.append(f"SETTINGS_SLASH_COMMAND={command!r} must look like /ai-settings")
    config = replace(
        config,
        available_models=models,
        reasoning_model_prefixes=r.names("REASONING_MODEL_PREFIXES", Config.reasoning_model_prefixes),
        default_reasoning_effort=r.choice("DEFAULT_REASONING_EFFORT", Config.default_reasoning_effort, REASONING_EFFORTS),
        default_verbosity=r.choice("DEFAULT_VERBOSITY", Config.default_verbosity, VERBOSITIES),
        default_temperature=r.number("DEFAULT_TEMPERATURE", Config.default_temperature, 0, 2),
        enable_streaming=r.flag("ENABLE_STREAMING", Config.enable_streaming),
        enable_web_search=r.flag("ENABLE_WEB_SEARCH", Config.enable_web_search),
        enable_code_interpreter=r.flag("ENABLE_CODE_INTERPRETER", Config.enable_code_interpreter),
        default_image_size=r.choice("DEFAULT_IMAGE_SIZE", Config.default_image_size, IMAGE_SIZES),
        default_image_quality=r.choice("DEFAULT_IMAGE_QUALITY", Config.default_image_quality, IMAGE_QUALITIES),
        settings_slash_command=command,
        thread_settings_callback_id=r.text("THREAD_SETTINGS_CALLBACK_ID", Config.thread_settings_callback_id),
        allowed_user_ids=r.names("ALLOWED_USER_IDS", ()),
        allowed_channel_ids=r.names("ALLOWED_CHANNEL_IDS", ()),
        admin_user_ids=r.names("ADMIN_USER_IDS", ()),
        allow_external_users=r.flag("ALLOW_EXTERNAL_USERS", Config.allow_external_users),
        daily_token_budget=r.number("DAILY_TOKEN_BUDGET", Config.daily_token_budget, 0, 10**12, int),
        backup_dir=r.text("BACKUP_DIR", Config.backup_dir),
        backup_keep=r.number("BACKUP_KEEP", Config.backup_keep, 0, 1000, int),
        backup_interval_hours=r.number("BACKUP_INTERVAL_HOURS", Config.backup_interval_hours, 0.01, 24 * 365),
        retention_days=r.number("RETENTION_DAYS", Config.retention_days, 0, 100 * 365),
    )
    if config.retention_days and config.retention_days * 86400 <= config.thread_idle_seconds:
        r.problems.append("RETENTION_DAYS must be longer than THREAD_IDLE_SECONDS (or 0 to keep everything)")
    if config.metrics_port and config.metrics_port == config.health_port:
        r.problems.append("METRICS_PORT must differ from HEALTH_PORT (each is served on its own port)")
    if config.openai_context_window and config.openai_context_window <= config.openai_max_output_tokens:
        r.problems.append("OPENAI_CONTEXT_WINDOW must be larger than OPENAI_MAX_OUTPUT_TOKENS")
    if r.problems:
        raise ConfigError(r.problems)
    return config
