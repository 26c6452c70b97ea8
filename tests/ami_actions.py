"""The AMI actions sent while a test's own code runs (a request answered in-process), told
apart from the control plane's background work (its workers' tasks) by a context variable:
only what runs inside ``actions_sent`` is counted. Every action of every AMI connection goes
through its client's ``action`` or ``action_list`` (a CLI command is an action)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from graam_pbx.ami import AmiClient, FieldValue, Message

_SENT: contextvars.ContextVar[list[tuple[str, dict[str, Any]]] | None] = contextvars.ContextVar(
    "graam_test_ami_actions", default=None
)


@contextlib.contextmanager
def actions_sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every action (name, fields) any AMI connection sends from this context, whether
    Asterisk answers it or not."""
    action, action_list = AmiClient.action, AmiClient.action_list

    def note(name: str, fields: Mapping[str, FieldValue] | None) -> None:
        sent = _SENT.get()
        if sent is not None:
            sent.append((name, dict(fields or {})))

    async def noted_action(
        self: AmiClient,
        name: str,
        fields: Mapping[str, FieldValue] | None = None,
        **options: Any,
    ) -> Message:
        note(name, fields)
        return await action(self, name, fields, **options)

    async def noted_list(
        self: AmiClient,
        name: str,
        fields: Mapping[str, FieldValue] | None = None,
        **options: Any,
    ) -> list[Message]:
        note(name, fields)
        return await action_list(self, name, fields, **options)

    monkeypatch.setattr(AmiClient, "action", noted_action)
    monkeypatch.setattr(AmiClient, "action_list", noted_list)
    sent: list[tuple[str, dict[str, Any]]] = []
    token = _SENT.set(sent)
    try:
        yield sent
    finally:
        _SENT.reset(token)
        monkeypatch.setattr(AmiClient, "action", action)
        monkeypatch.setattr(AmiClient, "action_list", action_list)
