"""`bridge doctor`: check a deployment end to end and say what is wrong.

Checks the configuration, the upstream key (by listing agents), the store, and each
enabled adapter that offers its own checks (`doctor` on the adapter class: Slack's
`auth.test` and scopes, Telegram's `getMe` and webhook).
"""

from __future__ import annotations

import secrets
from typing import Any

from bridge import errors
from bridge.adapters import Check, HasDoctor, build_adapter, preflight
from bridge.client import AgentClient
from bridge.config import Settings, redact_url
from bridge.stores import InFlightTurn

__all__ = ["Check", "run_doctor"]


async def run_doctor(settings: Settings) -> list[Check]:
    """Every check, in order; never raises for a failed check."""
    checks = [Check("config", True, str(settings.config_path or "defaults and environment"))]
    adapters: list[Any] = []
    for name in settings.adapters:
        try:
            adapters.append(build_adapter(settings, name))
        except errors.ConfigError as exc:
            checks.append(Check(f"adapters.{name}", False, str(exc)))
    try:
        preflight(settings, [a for a in adapters if getattr(a.config, "enabled", True)])
    except errors.ConfigError as exc:
        checks.append(Check("serve", False, f"would refuse to start: {exc}"))
    checks.append(await _upstream(settings))
    checks.extend(await _store(settings))
    for adapter in adapters:
        doctor = adapter.doctor if isinstance(adapter, HasDoctor) else None
        if not getattr(adapter.config, "enabled", True):
            checks.append(Check(adapter.name, True, "disabled"))
        elif doctor is None:
            checks.append(Check(adapter.name, True, "configured (no platform checks)"))
        else:
            try:
                checks.extend(await doctor(adapter.config, settings))
            except (errors.BridgeError, OSError) as exc:
                checks.append(Check(adapter.name, False, f"{type(exc).__name__}: {exc}"))
    return checks


async def _upstream(settings: Settings) -> Check:
    if settings.uses_embedded_emulator:
        return Check(
            "upstream",
            False,
            "no API key (set XPANDER_API_KEY); only the embedded emulator would answer",
        )
    url = redact_url(settings.upstream.base_url)
    try:
        async with AgentClient(settings.upstream.model_copy(update={"max_attempts": 1})) as client:
            page = await client.list_agents_page(per_page=50)
    except errors.AuthenticationError:
        problem = "the API key was refused" if settings.has_api_key else "an API key is needed"
        return Check("upstream", False, f"{url}: {problem} (401)")
    except errors.UpstreamError as exc:
        return Check("upstream", False, f"{url}: {exc}")
    return Check("upstream", True, f"{url}: key accepted, {page.total} agents")


async def _store(settings: Settings) -> list[Check]:
    """The store answers and takes locks; the in-flight ledger holds no quarantined turn."""
    shown = redact_url(settings.store.url)
    try:
        store = settings.store.open()
        await store.open()
        try:
            probe, owner = f"doctor:{secrets.token_hex(4)}", "doctor"
            if not await store.acquire_lock(probe, owner, 5.0):
                return [Check("store", False, f"{shown}: could not take a fresh lock")]
            await store.release_lock(probe, owner)
            turns = await store.list_turns()
        finally:
            await store.close()
    except (errors.StoreError, errors.ConfigError, OSError) as exc:
        return [Check("store", False, f"{shown}: {exc}")]
    return [Check("store", True, f"{shown}: reachable, locks work"), _ledger(turns)]


def _ledger(turns: list[InFlightTurn]) -> Check:
    quarantined = [turn for turn in turns if turn.quarantined]
    if not quarantined:
        return Check("ledger", True, f"{len(turns)} turns in flight, none quarantined")
    shown = "; ".join(
        f"{turn.key} (turn {turn.turn_id}, task {turn.task_id or '-'}): {turn.last_error}"
        for turn in quarantined[:5]
    )
    more = f" and {len(quarantined) - 5} more" if len(quarantined) > 5 else ""
    return Check(
        "ledger",
        False,
        f"{len(quarantined)} quarantined turns whose answer could not be delivered "
        f"{max(t.attempts for t in quarantined)} times: {shown}{more}",
    )
