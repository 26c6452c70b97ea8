"""Agents' session changes are announced when the outermost transaction commits: a savepoint
released inside it (the console's "My day" logs in inside one) is not a commit, and telling
the wallboard then made it read the agents before the login was visible."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from graam_pbx.agents import sessions


def _session(heard: list[set[int]]) -> Session:
    session = Session(create_engine("sqlite://"))
    session.info[sessions.CALLBACK_KEY] = heard.append
    return session


def _note(session: Session, tenant_id: int) -> None:
    """What a login, logout or pause notes in its session (sessions._note_change)."""
    session.info.setdefault(sessions.PENDING_KEY, set()).add(tenant_id)


def test_a_change_inside_a_savepoint_is_told_at_the_outer_commit() -> None:
    heard: list[set[int]] = []
    with _session(heard) as session:
        session.execute(text("select 1"))
        with session.begin_nested():
            _note(session, 7)
        assert heard == []  # the savepoint was released: nothing is committed yet
        session.commit()
    assert heard == [{7}]


def test_a_savepoint_rolled_back_keeps_what_came_before_it() -> None:
    heard: list[set[int]] = []
    with _session(heard) as session:
        session.execute(text("select 1"))
        _note(session, 7)
        try:
            with session.begin_nested():
                raise LookupError
        except LookupError:
            pass
        session.commit()
    assert heard == [{7}]


def test_a_rolled_back_transaction_tells_nothing() -> None:
    heard: list[set[int]] = []
    with _session(heard) as session:
        session.execute(text("select 1"))
        _note(session, 7)
        session.rollback()
        session.commit()
    assert heard == []
