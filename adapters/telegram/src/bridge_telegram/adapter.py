"""`TelegramAdapter`: the lifecycle that ties python-telegram-bot to the bridge's runtime.

It uses python-telegram-bot's manual lifecycle (`initialize`, `start`,
`updater.start_polling`, `stop`, `shutdown`) inside the bridge's event loop.
Updates arrive by long polling, by one elected poller per bot (a leased store
lock, so replicas never fight over `getUpdates`), or by webhook at
`/telegram/webhook` on the bridge's HTTP server (the mode for several replicas).
"""

from __future__ import annotations

import datetime as dtm
import json
import logging
from typing import Any, ClassVar

import anyio
import anyio.abc
from starlette.requests import Request
from starlette.responses import Response
from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from bridge.adapters import Check, RecoversThroughService
from bridge.config import Settings
from bridge.errors import PlatformError
from bridge.http import header_matches
from bridge.runtime import Runtime
from bridge.stores import hold_lease
from bridge_telegram._api import BotRequest, bot_call
from bridge_telegram._config import TelegramConfig
from bridge_telegram._doctor import telegram_checks
from bridge_telegram._inbound import BOT_COMMANDS
from bridge_telegram._outbound import Sender
from bridge_telegram._service import TelegramService

__all__ = ["WEBHOOK_PATH", "TelegramAdapter"]

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message"]


def build_application(config: TelegramConfig) -> Application[Any, Any, Any, Any, Any, Any]:
    """A python-telegram-bot `Application` on the configured Bot API server."""
    root = config.bot_api_root
    timeout = config.request_timeout
    builder = (
        ApplicationBuilder()
        .token(config.bot_token.get_secret_value())
        .base_url(f"{root}/bot")
        .base_file_url(f"{root}/file/bot")
        .request(BotRequest(read_timeout=timeout, write_timeout=timeout, connect_timeout=timeout))
        .get_updates_request(BotRequest(read_timeout=timeout, connect_timeout=timeout))
    )
    if config.mode == "webhook":
        builder = builder.updater(None)
    return builder.build()


class TelegramAdapter(RecoversThroughService):
    """Agents as Telegram bots (entry point `telegram`, table `[adapters.telegram]`)."""

    name: ClassVar[str] = "telegram"
    config_model: ClassVar[type[TelegramConfig]] = TelegramConfig

    def __init__(self, config: TelegramConfig) -> None:
        self.config = config
        self.service: TelegramService | None = None
        self.is_polling = False

    @staticmethod
    async def doctor(config: TelegramConfig, settings: Settings) -> list[Check]:
        """`bridge doctor`: getMe and the webhook state against the configured mode."""
        return await telegram_checks(config, settings, build_application(config))

    def describe(self, base_url: str) -> str:
        """One line of `bridge serve`'s start-up summary."""
        if self.config.mode == "polling":
            return "long polling (one poller per bot)"
        return f"webhook at {self.config.webhook_url or base_url + WEBHOOK_PATH}"

    async def serve(
        self,
        runtime: Runtime,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run until cancelled.

        Raises:
            PlatformError: the Bot API server rejected the token or is unreachable at start.
        """
        app = build_application(self.config)
        with bot_call("getMe"):
            await app.initialize()
        try:
            async with anyio.create_task_group() as group:
                sender = Sender(
                    app.bot, runtime.scheduler, draft_cooldown=self.config.draft_cooldown
                )
                service = self.service = TelegramService(
                    self.config, runtime, sender, bot_id=app.bot.id, username=app.bot.username
                )

                async def dispatch(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
                    name = f"telegram update {update.update_id}"
                    group.start_soon(service.guarded, service.handle, update, name=name)

                runtime.files.add_source("telegram", service.fetch_file)
                app.add_handler(TypeHandler(Update, dispatch))
                if self.config.mode == "webhook":
                    self._add_webhook(app, runtime)
                await self._set_commands(app)
                await app.start()
                if self.config.mode == "webhook":
                    group.start_soon(self._register_webhook, app, runtime)
                else:
                    group.start_soon(self._poll, app, runtime)
                task_status.started()
                await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                if app.updater is not None and app.updater.running:
                    await app.updater.stop()
                if app.running:
                    await app.stop()
                await app.shutdown()

    async def _set_commands(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        try:
            with bot_call("setMyCommands"):
                await app.bot.set_my_commands(BOT_COMMANDS)
        except PlatformError as exc:
            logger.warning("could not register the bot's commands: %s", exc)

    async def _poll(self, app: Application[Any, Any, Any, Any, Any, Any], runtime: Runtime) -> None:
        """Poll only while holding `telegram-poller:<bot id>`: one `getUpdates` consumer per bot."""
        updater = app.updater
        assert updater is not None

        async def polling() -> None:
            try:
                await updater.start_polling(
                    timeout=dtm.timedelta(seconds=self.config.poll_timeout),
                    allowed_updates=ALLOWED_UPDATES,
                    error_callback=_log_polling_error,
                )
                self.is_polling = True
                logger.info("polling updates of @%s", app.bot.username)
                await anyio.sleep_forever()
            finally:
                self.is_polling = False
                with anyio.CancelScope(shield=True):
                    if updater.running:
                        await updater.stop()

        await hold_lease(
            runtime.store,
            f"telegram-poller:{app.bot.id}",
            # Stable across restarts: a restarted process takes its own lease back at once.
            runtime.replica_identity or runtime.conversations.replica_id,
            self.config.poller_lease,
            polling,
            on_standby=lambda: logger.info("another replica polls bot %s; standing by", app.bot.id),
        )

    def _webhook_url(self, runtime: Runtime) -> str:
        if self.config.webhook_url:
            return self.config.webhook_url
        base = runtime.settings.http.public_url or runtime.http.base_url
        return f"{base.rstrip('/')}{WEBHOOK_PATH}"

    async def _register_webhook(
        self, app: Application[Any, Any, Any, Any, Any, Any], runtime: Runtime
    ) -> None:
        # The HTTP server starts after the adapters; without a configured URL, wait for it.
        if not self.config.webhook_url:
            await runtime.http.listening.wait()
        secret = self.config.secret_token
        assert secret is not None  # the config model requires it in webhook mode
        with bot_call("setWebhook"):
            await app.bot.set_webhook(
                self._webhook_url(runtime),
                secret_token=secret.get_secret_value(),
                allowed_updates=ALLOWED_UPDATES,
            )
        logger.info("webhook registered at %s", self._webhook_url(runtime))

    def _add_webhook(
        self, app: Application[Any, Any, Any, Any, Any, Any], runtime: Runtime
    ) -> None:
        secret = self.config.secret_token
        assert secret is not None  # the config model requires it in webhook mode

        def parse(request: Request, body: bytes) -> Update | None:
            data = json.loads(body)
            return Update.de_json(data, app.bot) if isinstance(data, dict) else None

        async def handle(request: Request, update: Update) -> Response:
            await app.update_queue.put(update)
            return Response(status_code=200)

        runtime.http.add_webhook(
            WEBHOOK_PATH,
            handle,
            verify=lambda request, body: header_matches(request, SECRET_HEADER, secret),
            parse=parse,
            refused=403,
            max_body=self.config.max_body_bytes,
        )


def _log_polling_error(exc: Exception) -> None:
    logger.warning("polling updates failed, retrying: %s", exc)
