"""Events of each node reach the shared bus tagged with the node's name, as text or fields."""

from __future__ import annotations

from graam_pbx.ami.bus import NODE_HEADER, RESYNC_EVENT, EventBus
from graam_pbx.ami.protocol import Message
from graam_pbx.cluster.supervisors import NodeBus, node_of_event, tagged
from tests.unit.ami.scripted import Recorder


def test_an_event_framed_as_text_stays_text_and_gets_the_node_last() -> None:
    block = "Event: Cdr\r\nUniqueID: graam-1700000000.1\r\nChanVariable: a=1\r\nChanVariable: b=2"
    message = tagged(Message(block), "paris-1")
    assert message.block == f"{block}\r\n{NODE_HEADER}: paris-1"
    assert message.event == "Cdr"
    assert message.getall("ChanVariable") == ["a=1", "b=2"]
    assert node_of_event(message) == "paris-1"


def test_an_event_made_of_fields_keeps_every_field_and_gets_the_node() -> None:
    message = tagged(Message([("Event", "Foo"), ("X", "1"), ("X", "2")]), "b")
    assert message.fields == (("Event", "Foo"), ("X", "1"), ("X", "2"), (NODE_HEADER, "b"))
    assert node_of_event(Message([("Event", "Foo")])) is None


async def test_each_nodes_bus_publishes_on_the_shared_one_tagged() -> None:
    shared = EventBus()
    everything, resyncs = Recorder(), Recorder()
    shared.subscribe("everything", "*", everything)
    a, b = NodeBus(shared, "a"), NodeBus(shared, "b")
    # Subscribing through a node's bus subscribes to the shared one.
    b.subscribe("resyncs", RESYNC_EVENT, resyncs)
    await shared.start()
    a.publish(Message("Event: Newchannel\r\nChannel: PJSIP/x-1"))
    b.publish(Message([("Event", "Hangup")]))
    b.publish(Message([("Response", "Success")]))  # no event: nothing published
    a.publish_resync(restarted=True)
    await everything.wait_for(3)
    await resyncs.wait_for(1)
    await shared.stop()

    assert [(m.event, node_of_event(m)) for m in everything.received] == [
        ("Newchannel", "a"),
        ("Hangup", "b"),
        (RESYNC_EVENT, "a"),
    ]
    assert resyncs.received[0]["Restarted"] == "yes"
    assert node_of_event(resyncs.received[0]) == "a"
