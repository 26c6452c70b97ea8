"""A fixed snapshot: two tenants (one suspended) and a trunk, for golden and property tests."""

from __future__ import annotations

from graam_pbx.asterisk.snapshot import (
    Dest,
    Device,
    ExternalConf,
    FollowMeConf,
    FollowMeMemberConf,
    ForwardingConf,
    InboundConf,
    IvrConf,
    MohClassConf,
    OutboundConf,
    PromptConf,
    QueueConf,
    ScheduleConf,
    Snapshot,
    TenantConf,
    TrunkConf,
    VoicemailConf,
)
from graam_pbx.recordings.policy import Direction, Mode, Rule

HA1 = "0123456789abcdef0123456789abcdef"


# Tenant 7 records its queue's calls (Bob's excepted), lets agents record outbound calls and
# the inbound calls dialled to them, records Ana's internal calls, and announces it; tenant 8
# records nothing.
RECORDING_RULES = (
    Rule(3, None, None, Mode.ALWAYS),
    Rule(None, 102, Direction.INBOUND, Mode.NEVER),
    Rule(None, None, Direction.OUTBOUND, Mode.ON_DEMAND),
    Rule(None, None, Direction.INBOUND, Mode.ON_DEMAND),
    Rule(None, 101, Direction.INTERNAL, Mode.ALWAYS),
)


def sample_tenant(
    tenant_id: int = 7,
    status: str = "active",
    name: str = "Ana Lima",
    *,
    recorded: bool = False,
    forwarded: bool = False,
) -> TenantConf:
    return TenantConf(
        id=tenant_id,
        slug=f"acme{tenant_id}",
        name="Acme",
        status=status,
        devices=(
            Device(11, 101, f"acme{tenant_id}-ana", HA1, "201", ("ulaw", "alaw"), "udp", 1),
            Device(12, 102, f"acme{tenant_id}-bob", HA1, "202", ("g722", "ulaw"), "udp", 2),
        ),
        agents={101: (f"acme{tenant_id}-ana",), 102: (f"acme{tenant_id}-bob",)},
        agent_names={101: name, 102: "Bob"},
        queues=(
            QueueConf(
                3,
                "sales",
                "leastrecent",
                15,
                5,
                10,
                60,
                Dest("voicemail", 5),
                "jazz",
                True,
                False,
                30,
                10,
            ),
        ),
        ivrs=(
            IvrConf(
                4,
                "main",
                9,
                5,
                2,
                Dest("hangup", None),
                Dest("queue", 3),
                (
                    ("1", Dest("queue", 3)),
                    ("2", Dest("voicemail", 5)),
                    ("9", Dest("announcement", 9)),
                    ("0", Dest("external", 14)),
                ),
            ),
        ),
        voicemail=(VoicemailConf(5, "800", "Sales box", "4711", "sales@acme.example", None),),
        prompts=(PromptConf(9, "a" * 64),),
        schedules=(
            ScheduleConf(
                6, "Europe/Paris", ((0, "09:00", "17:00"), (4, "09:00", "12:30")), ("2026-12-25",)
            ),
        ),
        inbound=(InboundConf(8, "+33142685300", 6, Dest("ivr", 4), Dest("voicemail", 5)),),
        outbound=(
            OutboundConf(
                2, "main", "carrier", "+33142685300", ("FR", "BE", "US"), 0, "Acme Société"
            ),
            # A trunk that shows a forwarded call's original caller.
            OutboundConf(15, "abroad", "v6", "+33142685300", ("GB",), 1, None, True),
        ),
        moh_classes=(MohClassConf(13, "jazz", (PromptConf(9, "a" * 64),)),),
        recording_rules=RECORDING_RULES if recorded else (),
        recording_announcement=9 if recorded else None,
        external_numbers=(ExternalConf(14, "+33612345678"),),
        forwarding=FORWARDING if forwarded else {},
        follow_me=FOLLOW_ME if forwarded else (),
    )


# Ana: busy to Bob's phone, no answer after 12 s to the mobile, unreachable to the sales box;
# Bob: do-not-disturb to the sales box.
FORWARDING = {
    101: ForwardingConf(
        False,
        None,
        None,
        Dest("extension", 12),
        Dest("external", 14),
        12,
        Dest("voicemail", 5),
    ),
    102: ForwardingConf(True, Dest("voicemail", 5), None, None, None, 20, None),
}


# Ana's phone, then Bob (all his phones) with the mobile, which must press 1, then voicemail.
FOLLOW_ME = (
    FollowMeConf(
        16,
        (
            (15, (FollowMeMemberConf("extension", 11, False),)),
            (
                25,
                (
                    FollowMeMemberConf("agent", 102, False),
                    FollowMeMemberConf("external", 14, True),
                ),
            ),
        ),
        Dest("voicemail", 5),
    ),
)


def sample_snapshot() -> Snapshot:
    return Snapshot(
        tenants=(
            sample_tenant(7, recorded=True, forwarded=True),
            sample_tenant(8, status="suspended"),
        ),
        trunks=(
            TrunkConf(1, "carrier", "127.0.0.2", 5060, "udp", "FR", "acct", "p;ss", True),
            # An IPv6 host known by a header, a host name that authenticates: never resolved.
            TrunkConf(
                2,
                "v6",
                "2001:db8::10",
                5061,
                "tcp",
                "FR",
                "+33100",
                "pw",
                True,
                match="ip_and_header",
                inbound_addresses=("2001:db8:1::/48",),
                match_header="X-Carrier-Key: 9f2c7d1e",
            ),
            TrunkConf(
                3,
                "named",
                "sip.carrier.example",
                5060,
                "udp",
                "BE",
                ".user",
                "pw",
                True,
                match="auth",
                inbound_addresses=("192.0.2.0/28",),
                inbound_username="+3225550100",
                inbound_password="in;pw",
            ),
        ),
    )
