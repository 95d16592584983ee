"""Test kit of the Slack adapter: a fake Slack Web API over a real socket, and event drivers.

`open_fake_slack()` runs the fake; `EventSender` signs and POSTs Events API payloads.
"""

from bridge_slack.testing._driver import EventSender, event_callback, sign
from bridge_slack.testing._server import FakeSlack, open_fake_slack
from bridge_slack.testing._state import TIER_LIMITS, Call, FakeMessage

__all__ = [
    "TIER_LIMITS",
    "Call",
    "EventSender",
    "FakeMessage",
    "FakeSlack",
    "event_callback",
    "open_fake_slack",
    "sign",
]
