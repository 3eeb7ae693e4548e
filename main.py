"""Entry point, and the one place that knows every part.

`create_app(config)` wires the parts; tests and other front ends build the bot the same way.
`python main.py` validates the configuration, runs until SIGTERM/SIGINT, then shuts down
gracefully: no new events, answers in flight get `SHUTDOWN_GRACE_SECONDS`, the rest are told.
`python main.py --console` chats from the terminal instead of Slack (console_client.py) and
stops the same way when its input ends.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Coroutine

import aiohttp
from aiohttp import web
from dotenv import load_dotenv

from base_client import BaseClient, Message
from config import Config, ConfigError, load_config
from console_client import ConsoleClient
from data_care import DataCare
from database import Database, DatabaseError
from document_handler import DocumentParser, Limits
from image_url_handler import ImageFetcher
from leases import Leases
from log_redaction import LIBRARY_LOGGERS, LibraryLevelFilter, RedactingFormatter, library_level
from message_processor import MessageProcessor, StopOutcome
from message_processor.settings_store import SettingsStore
from observability import Stats, serve_health, serve_metrics
from openai_client import OpenAIClient
from openai_client.models import ModelCatalog
from slack_client import SlackBot, SlackStartError
from supervision import JobFactory, Supervisor
from thread_manager import ThreadManager
from tools.registry import default_tools

if TYPE_CHECKING:
    from tools.mcp import McpServers

log = logging.getLogger("assistant")

MAINTENANCE_SECONDS = 30.0


class AssistantApp:
    """The running bot: database, model client, processor and Slack, started and stopped in order."""

    def __init__(self, config: Config, console: bool = False) -> None:
        self.config = config
        self.console = console
        # Set by SIGTERM/SIGINT (see `run`), or by the console when its input ends.
        self.stop_requested = asyncio.Event()
        self.db = Database(config.database_url, pool_size=config.database_pool_size)
        # Claims on messages and threads shared with other instances of the bot (PostgreSQL).
        self.leases = Leases(
            self.db, config.instance_name, config.lease_seconds, shared=config.database_engine == "postgresql"
        )
        self.threads = ThreadManager(idle_seconds=config.thread_idle_seconds)
        self.ai = OpenAIClient(
            api_key=config.openai_api_key,
            base_url=config.openai_base_url,
            timeout=config.openai_timeout_seconds,
            max_retries=config.openai_max_retries,
            api_style=config.openai_api_style,
            # The model-call limit follows every answer's status and rate-limit headers.
            on_response=lambda status, headers: self.processor.model_slots.observe(status, headers),
        )
        # The models the settings window offers: AVAILABLE_MODELS, else the server's own list.
        self.models = ModelCatalog(config.openai_model, config.available_models, self.ai.model_ids)
        self.settings = SettingsStore(config, self.db, self.models)
        # Every number an operator sees (/metrics, the stats line, /health), one registry per app.
        self.stats = Stats()
        # The front end: Slack, or the terminal.
        self.client: BaseClient
        if console:
            self.client = ConsoleClient(deliver=self._deliver, on_end=self.stop_requested.set)
        else:
            self.client = SlackBot(
                config, deliver=self._deliver, is_active_thread=self._is_active_thread,
                settings_source=self.settings, record_feedback=self._record_feedback,
                stop_turn=self._stop_turn, tool_groups=lambda: tuple(self.mcp.status()) if self.mcp else (),
                on_api_error=self.stats.slack_error, on_rate_limited=self.stats.slack_rate_limited,
                owner=self.leases.owner if self.leases.shared else "",
            )
        documents = DocumentParser(
            Limits(max_pages=config.max_document_pages, max_chars=config.max_document_chars),
            timeout=config.document_timeout_seconds,
        )
        images = ImageFetcher(max_bytes=int(config.max_file_mb * 1024 * 1024))
        # The team's own tools (MCP_CONFIG_FILE), offered beside the built-in ones each turn. The
        # MCP SDK is imported only when servers are configured: it costs ~25 MB and 0.4 s to load.
        self.mcp: McpServers | None = None
        if config.mcp_servers:
            from tools.mcp import McpServers

            self.mcp = McpServers.from_config(config)
        self.processor = MessageProcessor(
            config, self.client, self.ai, self.db, self.threads, self.settings, documents, images,
            default_tools(config, self.ai, local=self.mcp.tools if self.mcp else tuple), self.stats,
            self.leases,
        )
        self.data_care = DataCare(
            self.db, config.backup_path, config.backup_keep, config.backup_interval_hours * 3600,
            config.retention_days,
        )
        # Owns the background jobs: restarted when they fail, cancelled in stop().
        self.supervisor = Supervisor()
        self._health: web.AppRunner | None = None
        self._metrics: web.AppRunner | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def _deliver(self, message: Message) -> asyncio.Task[None] | None:
        """Hand a message to the processor; its task is returned (the console awaits it)."""
        if self._closed:
            # Only possible after every answer settled and the socket closed; the journal row
            # it never got is what a restart would need, so say it loudly.
            log.error("message %s arrived after shutdown; it was not answered", message.conversation_key)
            return None
        return self.processor.submit(message)

    async def _stop_turn(self, channel_id: str, thread_id: str, user_id: str, shown_as: str | None) -> bool:
        """Stop an answer, here or (several instances) on the instance writing it; `shown_as`:
        the message the Stop was pressed on (a queued message's placeholder stops that message)."""
        outcome = self.processor.stop(channel_id, thread_id, user_id, shown_as)
        if outcome is not StopOutcome.NOT_HERE:
            return outcome is StopOutcome.STOPPED
        return await self.leases.forward_stop(
            channel_id, thread_id, user_id,
            may_stop=lambda asker: user_id == asker or self.processor.access.is_admin(user_id),
            shown_as=shown_as,
        )

    async def _record_feedback(self, channel_id: str, message_ts: str, user_id: str, value: str) -> None:
        await self.processor.record_feedback(channel_id, message_ts, user_id, value)

    async def _is_active_thread(self, channel_id: str, thread_ts: str) -> bool:
        return await self.db.has_answered(channel_id, thread_ts)

    async def start(self) -> None:
        await self.db.open()
        if self.leases.shared:
            # Before anything is claimed: the name tells whether earlier runs of it are gone,
            # and the heartbeat keeps this run's claims (recovered ones too) from expiring.
            await self.leases.claim_name()
            self.supervisor.start("lease-heartbeat", self.leases.run_heartbeat)
        if self.mcp is not None:
            # Bounded: a server that is down is logged and retried in the background.
            await self.mcp.start()
        # The Web API first: recovery reads and tidies threads before any new event can arrive,
        # so nothing this process posts can be mistaken for a dead process's leftovers.
        await self.client.connect()
        if not self.console:
            # Before any click can arrive: a stop for an answer written here may come by another
            # instance's connection.
            await self.leases.listen_for_stops(
                lambda *stop: self.processor.stop(*stop) is StopOutcome.STOPPED
            )
            # The journal's leftovers are Slack messages: the console must not answer (or steal)
            # them, and a console run has nothing to recover (its person left with it).
            await self.processor.recover(self.config.recovery_window_minutes)
        await self.client.start()
        stats = self.processor.stats
        overdue_after = self.config.turn_timeout_seconds + 30
        jobs: dict[str, JobFactory] = {
            "thread-maintenance": lambda: self.threads.maintain(MAINTENANCE_SECONDS, overdue_after),
            "loop-lag": stats.watch_loop,
            "stats-line": lambda: stats.report(self.config.stats_interval_seconds, self.processor.gauges),
        }
        if not self.console and not self.models.configured:
            jobs["model-list"] = self.models.run
        if self.leases.shared and not self.console:
            # Other instances' work, once they stopped renewing it (died): answered here.
            window = self.config.recovery_window_minutes
            jobs["takeovers"] = lambda: self.leases.run_takeovers(
                lambda rows: self.processor.recover_rows(rows, window)
            )
            # Stops pressed through other instances, heard again after a lost session.
            jobs["stop-listener"] = self.leases.keep_listening_for_stops
        if self.data_care.backup_dir:
            jobs["backups"] = self.data_care.run_backups
        elif self.db.engine == "postgresql" and self.config.backup_keep:
            log.info("the bot takes no backups of a PostgreSQL database: use pg_dump (docs/operations.md)")
        if self.data_care.retention_days:
            jobs["retention"] = self.data_care.run_retention
        for name, factory in jobs.items():
            self.supervisor.start(name, factory)
        if self.config.metrics_port:
            self._metrics = await serve_metrics(self.config.metrics_host, self.config.metrics_port, stats)
        if self.config.health_port:
            self._health = await serve_health(
                self.config.health_port, stats, self.client.socket_connected, self.supervisor,
                instance=self.config.instance_name,
            )

    async def stop(self) -> None:
        log.info("shutting down")
        await self.client.stop_receiving()
        await self.processor.shutdown(self.config.shutdown_grace_seconds)
        self._closed = True
        await self.supervisor.stop()
        if self.mcp is not None:
            await self.mcp.stop()  # after the answers: no tool call loses its session midway
        for runner in (self._health, self._metrics):
            if runner is not None:
                await runner.cleanup()
        self._health = self._metrics = None
        await self.client.close()
        await self.ai.close()
        await self.db.close()
        log.info("stopped")


def create_app(config: Config, console: bool = False) -> AssistantApp:
    """The bot, talking through Slack or, with `console`, through this terminal."""
    if console:
        # ALLOWED_USER_IDS lists Slack people; the person at the terminal runs the bot itself.
        # Backups and retention stay the bot's job: a backup per console run would rotate the
        # bot's own backups away when both use one database.
        config = replace(config, allowed_user_ids=(), backup_keep=0, retention_days=0.0)
    return AssistantApp(config, console=console)


async def run(config: Config, console: bool = False) -> int:
    app = create_app(config, console=console)
    stop = app.stop_requested
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
    except (SlackStartError, DatabaseError) as exc:
        log.error("%s", exc)
        await app.stop()
        return 1
    except (aiohttp.ClientError, OSError) as exc:
        where = "start" if console else f"reach Slack at {config.slack_api_url}"
        log.error("cannot %s: %s", where, exc)
        await app.stop()
        return 1
    except Exception:
        # A bug, not a setting: say so and exit, rather than leave a half-started process
        # (an open database thread would keep it alive) for PM2 to wait on.
        log.exception("start-up failed")
        await app.stop()
        return 1
    freeze_start_up_heap()
    log.info("ready (instance %s, %s database)", config.instance_name, app.db.engine)
    await stop.wait()
    await app.stop()
    return 0


def setup_logging(level: str, secrets: tuple[str, ...], library: str = "INFO") -> None:
    """One redacting handler on stderr; the libraries' loggers at `library_level(level, library)`.

    `force`: a handler installed before this one (the openai SDK adds an unredacted one at
    import when OPENAI_LOG is set) is replaced, so every line goes through the redaction.
    """
    quiet = library_level(level, library)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets))
    handler.addFilter(LibraryLevelFilter(quiet))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in LIBRARY_LOGGERS:  # their debug calls then return before formatting anything
        logging.getLogger(name).setLevel(quiet)
    log.debug("logging at %s, the libraries at %s (LIBRARY_LOG_LEVEL)", level, logging.getLevelName(quiet))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The Slack assistant (see README.md).")
    parser.add_argument(
        "--console", action="store_true",
        help="chat from this terminal instead of Slack (no Slack tokens needed; Ctrl-D ends)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_dotenv()
    try:
        config = load_config(os.environ, require_slack=not args.console)
    except ConfigError as exc:
        print("Configuration problems:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    level = config.log_level
    if args.console and level == "INFO":
        level = "WARNING"  # per-answer and stats lines would break up the conversation
    setup_logging(level, config.secrets, config.library_log_level)
    return run_loop(run(config, console=args.console))


# How soon a thread waiting for the interpreter gets it from a busy loop (Python's default: 5 ms).
# SQLite's statements run on aiosqlite's thread and need it back after each one: in a burst of
# 300 people the loop is busy for seconds and every statement waited up to the full 5 ms.
SWITCH_INTERVAL_SECONDS = 0.0005


def freeze_start_up_heap() -> None:
    """What start-up built (modules, the SDKs' types, the app) lives as long as the process:
    frozen, the collector stops walking it on every full collection (about 110,000 objects;
    in a burst of 300 people a full collection paused the loop 82 ms, 23 ms once frozen)."""
    gc.collect()
    gc.freeze()


def run_loop(main_coroutine: Coroutine[Any, Any, int]) -> int:
    """The event loop: uvloop where it is installed (the same asyncio API, and about a third
    less of the loop's own CPU per answer in `make bench`), else asyncio's own."""
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main_coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main_coroutine)


if __name__ == "__main__":
    sys.exit(main())
