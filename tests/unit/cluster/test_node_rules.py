"""The rules of nodes that need no database: inputs, the secret, the moves between states."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from graam_pbx.ami import AmiConfig
from graam_pbx.cluster.models import AsteriskNode, NodeState
from graam_pbx.cluster.nodes import ami_config_of
from graam_pbx.cluster.schemas import NodeCreate, NodeUpdate, PlacementUpdate
from graam_pbx.cluster.service import TRANSITIONS

SECRET = "a-long-node-secret"
BODY: dict[str, Any] = {
    "name": "paris-2",
    "systemname": "paris2",
    "ami_host": "127.0.0.122",
    "ami_username": "graam",
    "ami_secret": SECRET,
    "sip_host": "AST2.Example",
}


def test_a_node_body_is_normalised_and_its_secret_never_shown() -> None:
    node = NodeCreate.model_validate(BODY)
    assert node.sip_host == "ast2.example"
    assert (node.ami_port, node.sip_port, node.state) == (5038, 5060, NodeState.ACTIVE)
    assert SECRET not in repr(node) and SECRET not in node.model_dump_json()
    assert node.ami_secret.get_secret_value() == SECRET


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "-lead"),
        ("name", "a" * 33),
        ("systemname", "x.y"),
        ("ami_host", "a b"),
        ("ami_port", 0),
        ("ami_port", True),
        ("ami_username", ""),
        ("ami_secret", "short"),
        ("ami_secret", "é" * 10),
        ("sip_port", 70000),
        ("state", "sleeping"),
    ],
)
def test_bad_values_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        NodeCreate.model_validate({**BODY, field: value})
    assert refused.value.errors()[0]["loc"][0] == field


def test_an_update_may_not_null_a_required_field() -> None:
    for field in ("name", "ami_secret", "state", "ami_port"):
        with pytest.raises(ValidationError):
            NodeUpdate.model_validate({field: None})
    assert NodeUpdate.model_validate({}).model_fields_set == set()


def test_a_placement_names_nodes_by_name() -> None:
    assert PlacementUpdate.model_validate({"node": "a"}).standby is None
    with pytest.raises(ValidationError):
        PlacementUpdate.model_validate({"node": "A B"})


def test_state_moves() -> None:
    active, draining, down = NodeState.ACTIVE, NodeState.DRAINING, NodeState.DOWN
    assert TRANSITIONS[active] == {draining, down}
    assert TRANSITIONS[draining] == {active, down}
    assert TRANSITIONS[down] == {active}  # a node comes back active, never draining


def test_a_nodes_ami_config_keeps_the_templates_timings() -> None:
    template = AmiConfig(
        host="127.0.0.1",
        port=5038,
        username="graam",
        secret="template-secret",
        ping_interval=5,
        ping_timeout=3,
        action_timeout=10,
        connect_timeout=5,
        backoff_max=5,
    )
    node = AsteriskNode(
        name="b", ami_host="127.0.0.122", ami_port=6038, ami_username="u", ami_secret=SECRET
    )
    config = ami_config_of(node, template)
    assert (config.host, config.port, config.username, config.secret) == (
        "127.0.0.122",
        6038,
        "u",
        SECRET,
    )
    assert (config.ping_interval, config.action_timeout) == (5, 10)
    assert SECRET not in repr(config)
