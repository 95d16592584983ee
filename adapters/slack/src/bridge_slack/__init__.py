"""The bridge's Slack adapter: agents as Slack bots (Bolt, HTTP Events API or Socket Mode)."""

from bridge_slack._config import SlackConfig
from bridge_slack.adapter import SlackAdapter

__all__ = ["SlackAdapter", "SlackConfig"]
