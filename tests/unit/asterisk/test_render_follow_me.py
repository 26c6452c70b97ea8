"""A follow-me's steps as Dial strings: a person rings all their phones, a step that rings
nobody (a person without a phone) is left out, never rendered as an empty or broken Dial."""

from __future__ import annotations

from graam_pbx.asterisk.render import environment, render_all
from graam_pbx.asterisk.snapshot import Dest, FollowMeConf, FollowMeMemberConf, Snapshot
from tests.unit.asterisk.sample import sample_tenant


def _dialplan(follow: FollowMeConf) -> str:
    tenant = sample_tenant(7)._replace(follow_me=(follow,))
    files = render_all(environment(), Snapshot(tenants=(tenant,), trunks=()))
    return files["tenants/t7/extensions.conf"]


def test_a_step_ringing_nobody_is_left_out_and_a_person_rings_every_phone() -> None:
    nobody = FollowMeMemberConf("agent", 999, False)  # a person without a phone
    both = FollowMeMemberConf("agent", 101, False)
    mobile = FollowMeMemberConf("external", 14, False)
    dialplan = _dialplan(
        FollowMeConf(
            21,
            ((10, (nobody,)), (20, (nobody, both, mobile))),
            Dest("hangup", None),
        )
    )
    follow = dialplan.split("exten => followme-21,1,", 1)[1].split("exten => ", 1)[0]
    assert " same => n,Dial(PJSIP/acme7-ana&Local/+33612345678@t7-outbound/n,20,t)\n" in follow
    assert follow.count("Dial(") == 1, follow
    assert "PJSIP/&" not in dialplan and "Dial(," not in dialplan
    assert " same => n,Goto(hangup,1)\n" in follow
