"""Agent Cards: one per exposed agent, with the interface URLs the bridge really serves."""

from __future__ import annotations

from importlib.metadata import version

from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentProvider,
    AgentSkill,
    HTTPAuthSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)
from a2a.utils.constants import PROTOCOL_VERSION_CURRENT, TransportProtocol

from bridge.models import Agent
from bridge_a2a._config import A2AConfig

__all__ = ["CARD_PATH", "agent_card", "agent_url"]

CARD_PATH = "/.well-known/agent-card.json"
INPUT_MODES = ["text/plain", "application/json", "application/octet-stream"]
OUTPUT_MODES = ["text/plain"]


def agent_url(base: str, config: A2AConfig, name: str) -> str:
    """The agent's JSON-RPC URL (its HTTP+JSON binding is under `rest`)."""
    return f"{base.rstrip('/')}{config.path}/{name}/"


def agent_card(agent: Agent, name: str, base: str, config: A2AConfig) -> AgentCard:
    """The card of one agent as served from `base` (the public URL, or the request's)."""
    url = agent_url(base, config, name)
    description = agent.description or f"The agent {agent.name!r}."
    card = AgentCard(
        name=agent.name,
        description=description,
        version=version("agent-bridge-a2a"),
        provider=AgentProvider(organization="agent bridge", url=base.rstrip("/")),
        supported_interfaces=[
            AgentInterface(
                url=url,
                protocol_binding=TransportProtocol.JSONRPC.value,
                protocol_version=PROTOCOL_VERSION_CURRENT,
            ),
            AgentInterface(
                url=f"{url}rest",
                protocol_binding=TransportProtocol.HTTP_JSON.value,
                protocol_version=PROTOCOL_VERSION_CURRENT,
            ),
        ],
        capabilities=AgentCapabilities(
            streaming=True, push_notifications=config.push_notifications
        ),
        default_input_modes=INPUT_MODES,
        default_output_modes=OUTPUT_MODES,
        skills=[
            AgentSkill(
                id=name,
                name=agent.name,
                description=description,
                tags=[agent.type or "agent"],
                input_modes=INPUT_MODES,
                output_modes=OUTPUT_MODES,
            )
        ],
    )
    if config.tokens:
        card.security_schemes["bearer"].CopyFrom(
            SecurityScheme(
                http_auth_security_scheme=HTTPAuthSecurityScheme(
                    scheme="Bearer", description="a token issued by the bridge's operator"
                )
            )
        )
        card.security_requirements.append(SecurityRequirement(schemes={"bearer": StringList()}))
    return card
