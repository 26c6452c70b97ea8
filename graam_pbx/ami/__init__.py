"""Our own Asterisk Manager Interface client: protocol, connection, event bus and supervisor."""

from graam_pbx.ami.bus import ALL_EVENTS, RESYNC_EVENT, EventBus, EventHandler, Subscription
from graam_pbx.ami.client import AmiClient, EventCallback
from graam_pbx.ami.errors import (
    AmiActionError,
    AmiDisconnected,
    AmiError,
    AmiInjectionError,
    AmiLoginError,
    AmiNotConnected,
    AmiProtocolError,
    AmiTimeout,
)
from graam_pbx.ami.protocol import FieldValue, FrameDecoder, Message, encode_action, event_time
from graam_pbx.ami.supervisor import AmiConfig, AmiState, AmiSupervisor, TransportFactory
from graam_pbx.ami.transport import AmiTransport, StreamTransport, open_tcp

__all__ = [
    "ALL_EVENTS",
    "RESYNC_EVENT",
    "AmiActionError",
    "AmiClient",
    "AmiConfig",
    "AmiDisconnected",
    "AmiError",
    "AmiInjectionError",
    "AmiLoginError",
    "AmiNotConnected",
    "AmiProtocolError",
    "AmiState",
    "AmiSupervisor",
    "AmiTimeout",
    "AmiTransport",
    "EventBus",
    "EventCallback",
    "EventHandler",
    "FieldValue",
    "FrameDecoder",
    "Message",
    "StreamTransport",
    "Subscription",
    "TransportFactory",
    "encode_action",
    "event_time",
    "open_tcp",
]
