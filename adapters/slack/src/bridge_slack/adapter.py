"""`SlackAdapter`: wires a Bolt app to the bridge (HTTP Events API or Socket Mode) and runs it.

Listeners only acknowledge, read and hand the work to the adapter's task
group, so Slack gets its ack well within 3 s; `SlackService` does the rest.
"""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any, ClassVar

import anyio
import anyio.abc
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.request.internals import parse_body
from slack_sdk.signature import SignatureVerifier
from starlette.requests import Request

from bridge.adapters import Check, CommandContext, RecoversThroughService
from bridge.config import Settings, validate_adapter_config
from bridge.runtime import Runtime
from bridge.scheduler import Bucket, Rate
from bridge_slack._api import SlackApi
from bridge_slack._config import SlackConfig
from bridge_slack._doctor import slack_checks
from bridge_slack._inbound import read_event
from bridge_slack._manifest import manifest
from bridge_slack._service import SlackService

__all__ = ["SlackAdapter"]


#: Slack's documented tiers, per workspace and method (`SlackPlace.bucket`), and about one
#: message per second per channel.
SLACK_RATES = {
    Bucket.every("slack", "chat.update"): Rate(per_second=50 / 60, burst=5),
    Bucket.every("slack", "chat.startStream"): Rate(per_second=20 / 60, burst=5),
    Bucket.every("slack", "chat.stopStream"): Rate(per_second=20 / 60, burst=5),
    Bucket.every("slack", "chat.appendStream"): Rate(per_second=100 / 60, burst=10),
    Bucket.every("slack", "assistant.threads.setStatus"): Rate(per_second=50 / 60, burst=5),
    Bucket.every("slack", "post"): Rate(per_second=1.0, burst=3),
}
logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


def _signed(verifier: SignatureVerifier, request: Request, body: bytes) -> bool:
    """The signature over the raw bytes, checked before Bolt parses (and logs) the body."""
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    signature = request.headers.get("x-slack-signature", "")
    return (
        timestamp.isascii()
        and timestamp.isdigit()
        and len(timestamp) <= 12  # seconds; a longer one overflows the SDK's float
        and signature.isascii()  # hmac.compare_digest refuses other str
        and verifier.is_valid(body, timestamp, signature)
    )


def _payload(request: Request, body: bytes) -> dict[str, Any] | None:
    """A JSON object or a form, which Bolt can handle (it answers others with a 500)."""
    content_type = (request.headers.get("content-type") or "").split(";")[0] or None
    payload = parse_body(body.decode(), content_type)
    if not isinstance(payload, dict) or not isinstance(payload.get("event", {}), dict):
        return None  # Bolt fails on `event: null`
    return payload


class SlackAdapter(RecoversThroughService):
    """Agents as Slack bots."""

    name: ClassVar[str] = "slack"
    config_model: ClassVar[type[SlackConfig]] = SlackConfig

    def __init__(self, config: SlackConfig) -> None:
        self.config = config
        self.service: SlackService | None = None
        self._group: anyio.abc.TaskGroup | None = None

    def _check(self) -> tuple[str, str]:
        # The model's validator requires the tokens the mode needs (`SlackConfig`).
        config = self.config
        assert config.bot_token is not None
        secret = config.signing_secret.get_secret_value() if config.signing_secret else ""
        return config.bot_token.get_secret_value(), secret

    async def serve(
        self,
        runtime: Runtime,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept Slack events until cancelled."""
        token, secret = self._check()
        runtime.scheduler.set_rates(SLACK_RATES)
        api = SlackApi(token, self.config.api_base)
        self.service = SlackService(self.config, runtime, api)
        runtime.files.add_source("slack", self.service.fetch_file)
        app = self._bolt_app(api, secret)
        async with anyio.create_task_group() as group:
            self._group = group
            if self.config.mode == "http":
                handler = AsyncSlackRequestHandler(app)
                runtime.http.add_webhook(
                    EVENTS_PATH,
                    lambda request, _: handler.handle(request),
                    verify=partial(_signed, SignatureVerifier(secret)),
                    parse=_payload,
                    max_body=self.config.max_body_bytes,
                )
                task_status.started()
                await anyio.sleep_forever()
            assert self.config.app_token is not None
            socket = AsyncSocketModeHandler(
                app, self.config.app_token.get_secret_value(), web_client=api.web
            )
            try:
                await socket.connect_async()  # type: ignore[no-untyped-call]
                task_status.started()
                await anyio.sleep_forever()
            finally:
                with anyio.CancelScope(shield=True):
                    await socket.close_async()  # type: ignore[no-untyped-call]

    def _bolt_app(self, api: SlackApi, secret: str) -> AsyncApp:
        bolt_logger = logging.getLogger("bridge_slack.bolt")
        bolt_logger.setLevel(logging.WARNING)  # at INFO and below, Bolt logs request bodies
        app = AsyncApp(
            client=api.web,
            signing_secret=secret,
            process_before_response=True,
            request_verification_enabled=self.config.mode == "http",
            logger=bolt_logger,
        )
        app.event("message")(self._on_message)
        app.event("app_mention")(self._on_message)
        app.event("assistant_thread_started")(self._on_ignored)
        app.event("agent_session_stopped")(self._on_session_stopped)
        app.command(self.config.slash_command)(self._on_command)
        app.action("bridge_stop")(self._on_stop_button)
        return app

    def _spawn(self, func: Any, *args: Any) -> None:
        assert self._group is not None and self.service is not None
        self._group.start_soon(self.service.guarded, func, *args)

    # -- listeners: ack, read, hand over ----------------------------------------------

    async def _on_message(
        self, body: dict[str, Any], ack: AsyncAck, context: AsyncBoltContext
    ) -> None:
        await ack()
        message = read_event(body, self.config, context.bot_user_id or "")
        if message is not None and self.service is not None:
            self._spawn(self.service.receive, message)

    async def _on_ignored(self, ack: AsyncAck) -> None:
        await ack()

    async def _on_session_stopped(self, body: dict[str, Any], ack: AsyncAck) -> None:
        await ack()
        event = body.get("event") or {}
        channel, thread_ts = event.get("channel"), event.get("thread_ts")
        if self.service is not None and channel and thread_ts:
            team, user = str(body.get("team_id") or ""), str(event.get("user") or "")
            self._spawn(self.service.stop_session, team, str(channel), str(thread_ts), user)

    async def _on_stop_button(self, body: dict[str, Any], ack: AsyncAck) -> None:
        await ack()
        value = str(((body.get("actions") or [{}])[0]).get("value") or "")
        team = str((body.get("team") or {}).get("id") or "")
        channel = str((body.get("channel") or {}).get("id") or "")
        user = str((body.get("user") or {}).get("id") or "")
        if self.service is not None and value:
            self._spawn(self.service.stop_button, team, channel, user, value)

    async def _on_command(self, body: dict[str, Any], ack: AsyncAck) -> None:
        await ack()
        if self.service is not None:
            self._spawn(self.service.command, body)

    def describe(self, base_url: str) -> str:
        """One line of `bridge serve`'s start-up summary."""
        if self.config.mode == "socket":
            return "Socket Mode (no public URL needed)"
        return f"events at {base_url}{EVENTS_PATH} (HTTP mode)"

    # -- CLI ---------------------------------------------------------------------------

    @staticmethod
    async def doctor(config: SlackConfig, settings: Settings) -> list[Check]:
        """`bridge doctor`: auth.test and the token's scopes."""
        return await slack_checks(config, settings)

    @staticmethod
    async def command(ctx: CommandContext, argv: list[str]) -> int:
        """`bridge slack manifest`: print the Slack app manifest (JSON) for this config."""
        if argv[:1] != ["manifest"]:
            ctx.err.write("usage: bridge slack manifest\n")
            return 2
        # The manifest comes before the tokens: they are not required here.
        config = validate_adapter_config(ctx.settings, "slack", SlackConfig, requirements=False)
        ctx.out.write(json.dumps(manifest(config, ctx.settings.http.public_url), indent=2) + "\n")
        return 0
