"""Which passwords may be chosen, and what an API key's scope lets through."""

from __future__ import annotations

import secrets

import pytest
from fastapi.routing import APIRoute
from hypothesis import given, settings
from hypothesis import strategies as st

from graam_pbx.app import API_ROUTERS
from graam_pbx.auth.passwords import password_problem
from graam_pbx.auth.principal import Area, Principal, Role

EMAIL = "ana.lima@acme.example"


@pytest.mark.parametrize(
    ("password", "because"),
    [
        ("            ", "spaces"),
        ("aaaaaaaaaaaa", "Repeats"),
        ("password1234", "common password"),
        ("qwertyuiop12", "too easy"),
        ("abcdefabcdef", "too easy"),
        ("ana.lima-secret!", "e-mail"),
        ("ANA.LIMA.2026.x", "e-mail"),
        ("acme-acme-acme-1", "names"),
        ("graam-pbx-admin!", "names"),
        ("short", "12 characters"),
        ("x" * 201, "200 characters"),
    ],
)
def test_weak_passwords_are_refused_with_why(password: str, because: str) -> None:
    problem = password_problem(password, email=EMAIL, names=["Ana Lima", "acme"])
    assert problem is not None and because in problem, problem


@pytest.mark.parametrize(
    "password",
    ["correct horse battery staple", "plum violin sunrise gravel", secrets.token_urlsafe(15)],
)
def test_strong_passwords_are_taken(password: str) -> None:
    assert password_problem(password, email=EMAIL, names=["Ana Lima"]) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=250))
def test_any_text_gets_an_answer_never_an_error(password: str) -> None:
    problem = password_problem(password, email=EMAIL, names=["Ana Lima"])
    assert problem is None or problem


def test_every_route_tag_is_an_area_a_key_can_be_scoped_to() -> None:
    areas = {area.value for area in Area}
    for router in API_ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute) and route.path.startswith("/api/"):
                assert route.tags, route.path  # an untagged route is closed to every key
                assert {str(t) for t in route.tags} <= areas, (route.path, route.tags)


def _key(*, read_only: bool, areas: set[str]) -> Principal:
    return Principal(1, Role.ADMIN, 1, "key:k", 7, read_only=read_only, areas=frozenset(areas))


def test_a_keys_scope_by_method_and_tags() -> None:
    reader = _key(read_only=True, areas={"queues"})
    assert reader.refusal("GET", ["queues"]) is None
    assert reader.refusal("HEAD", ["queues"]) is None
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert reader.refusal(method, ["queues"]) == "this API key is read-only"
    assert "not scoped to users" in str(reader.refusal("GET", ["users"]))
    writer = _key(read_only=False, areas={"queues"})
    assert writer.refusal("DELETE", ["queues"]) is None
    assert writer.refusal("GET", []) is not None
    user = Principal(1, Role.ADMIN, 1, "a@b.example")
    assert user.refusal("DELETE", []) is None
