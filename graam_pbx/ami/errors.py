"""Errors of the AMI client: one small class per way an action or a connection can fail."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graam_pbx.ami.protocol import Message


class AmiError(Exception):
    """Base of every AMI failure."""


class AmiActionError(AmiError):
    """Asterisk answered the action with ``Response: Error``."""

    def __init__(self, action: str, message: str, response: Message | None = None) -> None:
        super().__init__(f"{action} failed: {message}")
        self.action = action
        self.message = message
        self.response = response


class AmiTimeout(AmiError, TimeoutError):
    """No answer arrived in time; the action may or may not have run."""


class AmiDisconnected(AmiError):
    """The connection was lost while an action was in flight.

    The action may have run on Asterisk; it is never sent again by this package, so the caller
    decides whether a retry is safe (an ``Originate`` with the same ``ChannelId`` is).
    """


class AmiLoginError(AmiError):
    """Asterisk refused the ``Login`` action."""


class AmiInjectionError(AmiError, ValueError):
    """A field would change the framing of the action (CR, LF, NUL, or a bad header name)."""


class AmiProtocolError(AmiError):
    """The byte stream is not AMI, or a message outgrew the decoder's bound."""


class AmiNotConnected(AmiError):
    """No live connection; nothing was sent, so retrying later is always safe."""
