"""What the operator sends and reads about Asterisk nodes and tenants' placements.

A node's AMI secret is write-only, like a trunk's password: it is stored for the control
plane to log in with, and the API only ever says that one is set.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, StringConstraints

from graam_pbx import sip_values
from graam_pbx.cluster.models import AsteriskNode, NodeState
from graam_pbx.fields import NotNull

# The alphabets of the table's own check constraints: what the API accepts, Postgres stores.
NodeName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$"),
    Field(examples=["paris-1"], description="a-z, 0-9 and '-', 1 to 32 characters"),
]
SystemName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"),
    Field(
        examples=["paris1"],
        description="The node's asterisk.conf `systemname` (it prefixes every uniqueid, so "
        "CDR keys of different nodes never collide): A-Z, a-z, 0-9, '_' and '-', 1 to 32",
    ),
]
NodeHost = Annotated[
    str,
    AfterValidator(sip_values.host),
    Field(examples=["127.0.0.1", "ast1.example"], description=sip_values.HOST_RULE),
]
PhoneWebSocket = Annotated[
    str,
    StringConstraints(pattern=r"^wss?://[^\s/]+(/\S*)?$", max_length=255),
    Field(
        examples=["wss://paris-2.pbx.example/ws"],
        description="Where browsers reach the node's SIP WebSocket (browser phones), as they "
        "see it: ws:// or wss://, a host, a path",
    ),
]
Port = Annotated[int, Field(ge=1, le=65535, strict=True, examples=[5038])]
AmiUsername = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$"),
    Field(examples=["graam"], description="A-Z, a-z, 0-9, '.', '_' and '-', 1 to 64"),
]

# Printable ASCII without spaces: one manager.conf value, one AMI header.
_AMI_SECRET = re.compile(r"[!-~]{8,128}")


def _ami_secret(secret: SecretStr) -> SecretStr:
    if not _AMI_SECRET.fullmatch(secret.get_secret_value()):
        raise ValueError("8 to 128 printable ASCII characters, without spaces")
    return secret


AmiSecret = Annotated[
    SecretStr, AfterValidator(_ami_secret), Field(description="Write-only: never returned.")
]


class NodeCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "paris-2",
                    "systemname": "paris2",
                    "ami_host": "10.0.0.12",
                    "ami_port": 5038,
                    "ami_username": "graam",
                    "ami_secret": "a-long-random-secret",
                    "sip_host": "10.0.0.12",
                    "sip_port": 5060,
                }
            ]
        },
    )

    name: NodeName
    systemname: SystemName
    ami_host: NodeHost
    ami_port: Port = 5038
    ami_username: AmiUsername
    ami_secret: AmiSecret
    sip_host: NodeHost
    sip_port: Port = 5060
    phone_websocket: PhoneWebSocket | None = None
    state: NodeState = Field(
        NodeState.ACTIVE, description="draining: registered, but takes no tenant yet"
    )


class NodeUpdate(BaseModel):
    """A change of a node; ``state`` moves it: active ⇄ draining, any → down, down → active."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"state": "draining"}, {"ami_secret": "a-new-secret-1"}]},
    )

    name: Annotated[NodeName | None, NotNull] = None
    systemname: Annotated[SystemName | None, NotNull] = None
    ami_host: Annotated[NodeHost | None, NotNull] = None
    ami_port: Annotated[Port | None, NotNull] = None
    ami_username: Annotated[AmiUsername | None, NotNull] = None
    ami_secret: Annotated[AmiSecret | None, NotNull] = None
    sip_host: Annotated[NodeHost | None, NotNull] = None
    sip_port: Annotated[Port | None, NotNull] = None
    phone_websocket: PhoneWebSocket | None = Field(None, description="null: none")
    state: Annotated[NodeState | None, NotNull] = None


class NodeOut(BaseModel):
    """A node; its AMI secret is write-only and never appears here."""

    id: int
    name: str
    systemname: str
    ami_host: str
    ami_port: int
    ami_username: str
    sip_host: str
    sip_port: int
    phone_websocket: str | None
    state: NodeState
    default: bool = Field(description="Tenants without a placement live here")
    tenants: int = Field(description="Tenants living on the node (placed, or by default)")
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, node: AsteriskNode, *, default: bool, tenants: int) -> NodeOut:
        return cls(
            id=node.id,
            name=node.name,
            systemname=node.systemname,
            ami_host=node.ami_host,
            ami_port=node.ami_port,
            ami_username=node.ami_username,
            sip_host=node.sip_host,
            sip_port=node.sip_port,
            phone_websocket=node.phone_websocket,
            state=NodeState(node.state),
            default=default,
            tenants=tenants,
            version=node.version,
            created_at=node.created_at,
            updated_at=node.updated_at,
        )


class PlacementUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"node": "paris-2", "standby": "paris-1"}, {"node": "paris-1"}]
        },
    )

    node: NodeName = Field(description="The node the tenant lives on (an active one to move)")
    standby: NodeName | None = Field(
        None, description="The node its phones and calls go to while its node is down"
    )


class PlacedNode(BaseModel):
    id: int
    name: str
    state: NodeState

    @classmethod
    def of(cls, node: AsteriskNode) -> PlacedNode:
        return cls(id=node.id, name=node.name, state=NodeState(node.state))


class PlacementOut(BaseModel):
    """Where a tenant lives."""

    tenant_id: int
    node: PlacedNode
    standby: PlacedNode | None
    placed: bool = Field(description="false: no placement of its own, it lives on the default node")
    placed_at: datetime | None
