"""Asterisk's CDRs as records: from a ``Cdr`` AMI event or a row of the CSV log, same result.

Both sources carry the same CDR with the same exact times (epoch microseconds: the AMI
mappings ``start,u``/``answer,u``/``end,u`` and the CSV's ``start(double)``…), so a CDR seen
twice has one key and one value. What identifies, times or bills a call must parse, or the
CDR is refused (it goes to the dead letters with the reason); what only attributes it (tenant,
queue, agent) becomes NULL when it does not parse: the call is still billed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from graam_pbx.ami.protocol import Message
from graam_pbx.fields import MAX_ID

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CSV_LAYOUT = "graam-cdr-3"  # first column of every row of asterisk_conf/cdr_custom.conf
CSV_FIELDS = 30
# The layouts before: still read (a log written before an upgrade is backfilled after it).
# 2: before the user who forwarded the leg (graam_forwarded_from).
CSV_LAYOUT_2 = "graam-cdr-2"
CSV_FIELDS_2 = 29
# 1: before the dialled number, refusals and agents' legs.
CSV_LAYOUT_1 = "graam-cdr-1"
CSV_FIELDS_1 = 25
# A clock this far off is a broken clock or a forged event, not a call.
EARLIEST_US = 946_684_800 * 1_000_000  # 2000-01-01
LATEST_US = 7_258_118_400 * 1_000_000  # 2200-01-01
MAX_SECONDS_US = 10**14  # numeric(14, 6): under 10^8 seconds
MAX_KEY_CHARS = 150

_DECIMAL_SECONDS = re.compile(r"[0-9]{1,8}(\.[0-9]{1,6})?")
_EPOCH_US = re.compile(r"[0-9]{1,12}\.[0-9]{6}", re.ASCII)


class MalformedCdr(ValueError):
    """A CDR that cannot be written; ``reason`` is a short code (a metric label)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class CdrRecord(NamedTuple):
    """One CDR, fields in ``COLUMNS`` order (the order COPY sends them in).

    Times and durations are whole microseconds (since the epoch, or long): exact, and cheap
    to send; Postgres turns them into ``timestamptz`` and ``numeric`` (writer.py).
    """

    started_us: int
    system_name: str
    uniqueid: str
    sequence: int
    linkedid: str
    answered_us: int | None
    ended_us: int
    duration_us: int
    billsec_us: int
    disposition: str
    tenant_id: int | None
    direction: str | None
    did: str | None
    queue_id: int | None
    agent_user_id: int | None
    src: str
    dst: str
    dcontext: str
    clid: str
    channel: str
    dstchannel: str
    lastapp: str
    lastdata: str
    accountcode: str
    peeraccount: str
    amaflags: str
    userfield: str
    source: str
    to_number: str | None  # what was dialled: E.164, or the extension of an internal call
    refusal_reason: str | None  # set by the dialplan where it refuses a call
    billable: bool  # see ``is_billable``
    device: str | None  # the agent's device (its endpoint) on an agent's leg
    forwarded_from: int | None  # the user whose forwarding rule sent this leg here

    @property
    def key(self) -> tuple[str, str, int]:
        """What makes a CDR unique: (system name, uniqueid, sequence)."""
        return (self.system_name, self.uniqueid, self.sequence)

    @property
    def started_at(self) -> datetime:
        return moment(self.started_us)

    @property
    def answered_at(self) -> datetime | None:
        return None if self.answered_us is None else moment(self.answered_us)

    @property
    def ended_at(self) -> datetime:
        return moment(self.ended_us)

    @property
    def duration(self) -> Decimal:
        return seconds(self.duration_us)

    @property
    def billsec(self) -> Decimal:
        return seconds(self.billsec_us)


COLUMNS: tuple[str, ...] = CdrRecord._fields
ANSWERED = "ANSWERED"  # Asterisk's disposition of an answered leg
_COLUMNS_1 = 28  # a journaled record written before ``to_number`` and what follows it
_COLUMNS_2 = 32  # a journaled record written before ``forwarded_from``


def is_billable(
    direction: str | None, disposition: str, refusal_reason: str | None, billsec_us: int
) -> bool:
    """Only an answered outbound leg that lasted is billed; refused and feature-code calls,
    inbound and internal legs never are (README: "Billable legs")."""
    return (
        direction == "outbound"
        and refusal_reason is None
        and disposition == ANSWERED
        and billsec_us > 0
    )


def moment(us: int) -> datetime:
    """A time in microseconds since the epoch, as an aware datetime."""
    return EPOCH + timedelta(microseconds=us)


def micros(at: datetime) -> int:
    """An aware datetime as microseconds since the epoch (the inverse of ``moment``)."""
    return (at - EPOCH) // timedelta(microseconds=1)


def seconds(us: int) -> Decimal:
    """Microseconds as exact decimal seconds."""
    return Decimal(us).scaleb(-6)


# Every header the parser reads; an event that names them in another case is looked up again.
_REQUIRED = ("UniqueID", "Sequence", "LinkedID", "StartEpoch", "AnswerEpoch", "EndEpoch")
_READ = frozenset(
    (
        *_REQUIRED,
        "Disposition",
        "SystemName",
        "BillableSecondsExact",
        "AccountCode",
        "PeerAccount",
        "TenantID",
        "GraamDirection",
        "GraamDID",
        "GraamQueue",
        "GraamAgent",
        "GraamTo",
        "GraamRefused",
        "GraamAgentAnswer",
        "GraamDevice",
        "GraamForwardedFrom",
        "Source",
        "Destination",
        "DestinationContext",
        "CallerID",
        "Channel",
        "DestinationChannel",
        "LastApplication",
        "LastData",
        "AMAFlags",
        "UserField",
    )
)


def _layout() -> re.Pattern[str]:
    """A ``Cdr`` event exactly as Asterisk 22 writes it with the shipped cdr_manager.conf, and
    with values that are certainly valid.

    Every check the general path makes on a value is made here by the pattern where it can
    be (lengths, digits, Asterisk's own ``%ld.%06ld``), so the hot path is left with a few
    comparisons; anything else does not match and takes the general path, which says what is
    wrong or makes the same record.
    """
    # "." is anything but LF, and the framing left no LF inside a message: a value runs to the
    # line's CRLF (a lone CR stays in it, as the general path keeps it).
    value, ignored = r"(.*)", r".*"
    epoch = r"([0-9]{1,12}\.[0-9]{6})"
    key = rf"(.{{1,{MAX_KEY_CHARS}}})"
    natural = r"([0-9]{0,18})"  # empty, or under 10^18: below MAX_ID
    # t<id> (as _tenant reads it): the id's digits without leading zeros, else nothing.
    tenant = r"(?:(?=t(?=[0-9]{1,18}\r\n)0*([1-9][0-9]*)\r\n))?"
    special = {
        "AccountCode": tenant + value,
        "TenantID": tenant + ignored,
        "UniqueID": key,
        "LinkedID": key,
        "Sequence": r"([0-9]{1,18})",
        "Disposition": r"(.+)",
        "StartEpoch": epoch,
        "AnswerEpoch": epoch,
        "EndEpoch": epoch,
        "BillableSecondsExact": r"((?:[0-9]{1,8}\.[0-9]{6})?)",  # ${CDR(billsec,f)}: %.6f
        "GraamQueue": natural,
        "GraamAgent": natural,
    }
    lines = [
        f"{name}: {special.get(name, value if name in _READ else ignored)}" for name in _LAYOUT
    ]
    system_name = rf"(?:SystemName: (.{{0,{MAX_KEY_CHARS}}})\r\n)?"
    # Timestamp: present when manager.conf has timestampevents = yes (shipped on).
    head = f"Event: Cdr\r\nPrivilege: {ignored}\r\n(?:Timestamp: {ignored}\r\n)?{system_name}"
    # The headers of legs, then the user who forwarded the leg (each absent from an Asterisk
    # still configured as before them).
    legs = (
        rf"(?:\r\nGraamTo: {value}\r\nGraamRefused: {value}"
        rf"\r\nGraamAgentAnswer: ((?:{epoch[1:-1]})?)\r\nGraamDevice: {value}"
        rf"(?:\r\nGraamForwardedFrom: {natural})?)?"
    )
    # The node's name, appended last by the control plane when it drives several Asterisk
    # nodes (graam_pbx/cluster/supervisors.py); the record's SystemName already says it.
    node = rf"(?:\r\nGraamNode: {ignored})?"
    return re.compile(head + "\r\n".join(lines) + legs + node)


# The headers after SystemName, in Asterisk's order: the standard ones, then our mappings.
_LAYOUT = (
    "AccountCode",
    "Source",
    "Destination",
    "DestinationContext",
    "CallerID",
    "Channel",
    "DestinationChannel",
    "LastApplication",
    "LastData",
    "StartTime",
    "AnswerTime",
    "EndTime",
    "Duration",
    "BillableSeconds",
    "Disposition",
    "AMAFlags",
    "UniqueID",
    "UserField",
    "LinkedID",
    "Sequence",
    "PeerAccount",
    "TenantID",
    "StartEpoch",
    "AnswerEpoch",
    "EndEpoch",
    "BillableSecondsExact",
    "GraamDirection",
    "GraamDID",
    "GraamQueue",
    "GraamAgent",
)
_CDR_TEXT = _layout()


def record_from_event(message: Message) -> CdrRecord:
    """The record of one ``Cdr`` event; raises ``MalformedCdr``."""
    block = message.block
    if block is not None and "\x00" not in block:
        # Hot path: one match over the event's text instead of splitting it into headers.
        # Any other shape (another layout, a header twice, a NUL anywhere, a value the layout
        # does not vouch for) takes the general path below.
        match = _CDR_TEXT.fullmatch(block)
        if match is not None:
            record = _record_from_layout(match.groups(""))
            if record is not None:
                return record
    fields = dict(message.fields)
    if not fields.keys() >= _READ:
        # Missing, or named in another case (AMI header names are case-insensitive).
        fields = {name: found for name in _READ if (found := message.get(name)) is not None}
    for name in _REQUIRED:
        if name not in fields:
            hint = "" if name == "UniqueID" else " (see asterisk_conf/cdr_manager.conf)"
            raise MalformedCdr("missing-field", f"{name} is missing{hint}")
    get = fields.get
    exact = get("BillableSecondsExact", "")
    return _record(
        system_name=get("SystemName", ""),
        uniqueid=fields["UniqueID"],
        sequence=fields["Sequence"],
        linkedid=fields["LinkedID"],
        start_us=_epoch_us("StartEpoch", fields["StartEpoch"]),
        answer_us=_epoch_us("AnswerEpoch", fields["AnswerEpoch"]),
        end_us=_epoch_us("EndEpoch", fields["EndEpoch"]),
        billsec_us=_seconds_us("BillableSecondsExact", exact) if exact else None,
        disposition=get("Disposition", ""),
        tenantid=get("TenantID", ""),
        direction=get("GraamDirection", ""),
        did=get("GraamDID", ""),
        queue=get("GraamQueue", ""),
        agent=get("GraamAgent", ""),
        legs=(
            get("GraamTo", ""),
            get("GraamRefused", ""),
            get("GraamAgentAnswer", ""),
            get("GraamDevice", ""),
        ),
        forwarded_from=get("GraamForwardedFrom", ""),
        texts=(
            get("Source", ""),
            get("Destination", ""),
            get("DestinationContext", ""),
            get("CallerID", ""),
            get("Channel", ""),
            get("DestinationChannel", ""),
            get("LastApplication", ""),
            get("LastData", ""),
            get("AccountCode", ""),
            get("PeerAccount", ""),
            get("AMAFlags", ""),
            get("UserField", ""),
        ),
        source="ami",
    )


def _record_from_layout(values: tuple[str, ...]) -> CdrRecord | None:
    """The record of values the layout has checked; None when a check left to here fails
    (the general path then finds the same and says why)."""
    (
        system_name,
        account_tenant,  # the id of a t<id> accountcode, else ""
        accountcode,
        src,
        dst,
        dcontext,
        clid,
        channel,
        dstchannel,
        lastapp,
        lastdata,
        disposition,
        amaflags,
        uniqueid,
        userfield,
        linkedid,
        sequence,
        peeraccount,
        tenantid_tenant,  # the id of a t<id> TenantID, else ""
        start,
        answer,
        end,
        exact,
        direction,
        did,
        queue,
        agent,
        to_number,
        refused,
        agent_answer,
        device,
        forwarded_from,
    ) = values
    # Times are %ld.%06ld and BillableSecondsExact %.6f (checked by the layout).
    start_us = int(start.replace(".", ""))
    answer_us = int(answer.replace(".", ""))
    end_us = int(end.replace(".", ""))
    duration_us = end_us - start_us
    answered_us: int | None
    if answer_us:  # Asterisk writes 0.000000 for a call never answered
        if not start_us <= answer_us <= end_us:
            return None
        answered_us = answer_us
        billsec_us = int(exact.replace(".", "")) if exact else end_us - answer_us
    else:
        answered_us = None
        billsec_us = int(exact.replace(".", "")) if exact else 0
    if not (
        EARLIEST_US <= start_us <= end_us < LATEST_US
        and duration_us < MAX_SECONDS_US
        and billsec_us <= duration_us
    ):
        return None
    if agent_answer:
        agent_answer_us = int(agent_answer.replace(".", ""))
        if start_us <= agent_answer_us <= end_us:
            answered_us = agent_answer_us
            billsec_us = end_us - agent_answer_us
    device = device or _rung_device(lastapp, dstchannel)
    if device and disposition != ANSWERED:
        answered_us, billsec_us = None, 0  # a ring nobody picked up
    tenant = account_tenant or tenantid_tenant  # the accountcode's, else the TenantID's
    refusal_reason = refused or None
    return _new_record(
        CdrRecord,
        (
            start_us,
            system_name,
            uniqueid,
            int(sequence),
            linkedid,
            answered_us,
            end_us,
            duration_us,
            billsec_us,
            disposition,
            int(tenant) if tenant else None,
            direction or None,
            did or None,
            int(queue) if queue else None,
            int(agent) if agent else None,
            src,
            dst,
            dcontext,
            clid,
            channel,
            dstchannel,
            lastapp,
            lastdata,
            accountcode,
            peeraccount,
            amaflags,
            userfield,
            "ami",
            to_number or None,
            refusal_reason,
            is_billable(direction, disposition, refusal_reason, billsec_us),
            device or None,
            int(forwarded_from) if forwarded_from else None,
        ),
    )


def record_from_csv(row: list[str], system_name: str) -> CdrRecord:
    """The record of one row of Asterisk's CSV log (``asterisk_conf/cdr_custom.conf``)."""
    if len(row) == CSV_FIELDS_1 and row[0] == CSV_LAYOUT_1:
        row = [CSV_LAYOUT, *row[1:], "", "", "", "", ""]
    elif len(row) == CSV_FIELDS_2 and row[0] == CSV_LAYOUT_2:
        row = [CSV_LAYOUT, *row[1:], ""]
    if len(row) != CSV_FIELDS or row[0] != CSV_LAYOUT:
        raise MalformedCdr(
            "bad-layout", f"expected {CSV_FIELDS} fields starting with {CSV_LAYOUT!r}"
        )
    (
        _,
        uniqueid,
        sequence,
        linkedid,
        start,
        answer,
        end,
        disposition,
        accountcode,
        peeraccount,
        tenantid,
        src,
        dst,
        dcontext,
        clid,
        channel,
        dstchannel,
        lastapp,
        lastdata,
        amaflags,
        userfield,
        direction,
        did,
        queue,
        agent,
        to_number,
        refused,
        agent_answer,
        device,
        forwarded_from,
    ) = row
    return _record(
        system_name=system_name,
        uniqueid=uniqueid,
        sequence=sequence,
        linkedid=linkedid,
        start_us=_epoch_us("start", start),
        answer_us=_epoch_us("answer", answer),
        end_us=_epoch_us("end", end),
        billsec_us=None,  # the CSV cannot carry it exactly: end - answer is the same value
        disposition=disposition,
        tenantid=tenantid,
        direction=direction,
        did=did,
        queue=queue,
        agent=agent,
        legs=(to_number, refused, agent_answer, device),
        forwarded_from=forwarded_from,
        texts=(
            src,
            dst,
            dcontext,
            clid,
            channel,
            dstchannel,
            lastapp,
            lastdata,
            accountcode,
            peeraccount,
            amaflags,
            userfield,
        ),
        source="csv",
    )


def _record(
    *,
    system_name: str,
    uniqueid: str,
    sequence: str,
    linkedid: str,
    start_us: int,
    answer_us: int,
    end_us: int,
    billsec_us: int | None,
    disposition: str,
    tenantid: str,
    direction: str,
    did: str,
    queue: str,
    agent: str,
    legs: tuple[str, str, str, str],
    forwarded_from: str,
    texts: tuple[str, ...],
    source: str,
) -> CdrRecord:
    """Validate one CDR's values and build its record: the CSV log, and every event the
    layout does not vouch for (``_record_from_layout`` builds the same record)."""
    if not uniqueid or len(uniqueid) > MAX_KEY_CHARS:
        raise MalformedCdr("bad-text", "UniqueID is empty or too long")
    if not linkedid or len(linkedid) > MAX_KEY_CHARS:
        raise MalformedCdr("bad-text", "LinkedID is empty or too long")
    if len(system_name) > MAX_KEY_CHARS:
        raise MalformedCdr("bad-text", "SystemName is too long")
    if not disposition:
        raise MalformedCdr("missing-field", "Disposition is empty")
    sequence_number = _natural(sequence)
    if sequence_number is None:
        raise MalformedCdr("bad-number", f"Sequence {sequence[:40]!r} is not a number")
    for name, us in (("start", start_us), ("end", end_us)):
        if not EARLIEST_US <= us < LATEST_US:
            raise MalformedCdr("bad-time", f"{name} {us / 1e6:.6f} is not a plausible time")
    if end_us < start_us:
        raise MalformedCdr("bad-time", "the CDR ends before it starts")
    answered = answer_us > 0  # Asterisk writes 0.000000 for a call never answered
    if answered and not start_us <= answer_us <= end_us:
        raise MalformedCdr("bad-time", "answered outside the CDR's start and end")
    duration_us = end_us - start_us
    if duration_us >= MAX_SECONDS_US:
        raise MalformedCdr("bad-time", "the CDR lasts longer than 10^8 seconds")
    if billsec_us is None:
        billsec_us = end_us - answer_us if answered else 0
    elif billsec_us > duration_us:
        raise MalformedCdr("bad-number", f"billsec {seconds(billsec_us)} is longer than the CDR")
    to_number, refused, agent_answer, device = legs
    if "\x00" in "".join(
        (uniqueid, linkedid, system_name, disposition, direction, did, *legs, *texts)
    ):
        raise MalformedCdr("bad-text", "a field holds a NUL character")
    answered_us = answer_us if answered else None
    if agent_answer:
        # The agent's own answer (dialplan ``t<id>-agent-leg``): only attributes the leg, so a
        # value that does not parse or fit is ignored rather than refusing the CDR.
        try:
            agent_answer_us = _epoch_us("GraamAgentAnswer", agent_answer)
        except MalformedCdr:
            agent_answer_us = -1
        if start_us <= agent_answer_us <= end_us:
            answered_us = agent_answer_us
            billsec_us = end_us - agent_answer_us
    device = device or _rung_device(texts[6], texts[5])
    if device and disposition != ANSWERED:
        answered_us, billsec_us = None, 0  # a ring nobody picked up
    refusal_reason = refused or None
    return _new_record(
        CdrRecord,
        (
            start_us,
            system_name,
            uniqueid,
            sequence_number,
            linkedid,
            answered_us,
            end_us,
            duration_us,
            billsec_us,
            disposition,
            _tenant(texts[8]) or _tenant(tenantid),  # the accountcode, else the tenantid
            direction or None,
            did or None,
            _natural(queue),
            _natural(agent),
            *texts,
            source,
            to_number or None,
            refusal_reason,
            is_billable(direction or None, disposition, refusal_reason, billsec_us),
            device or None,
            # Only attributes the leg (a user id): NULL when it does not parse, as the agent.
            _natural(forwarded_from),
        ),
    )


_new_record = tuple.__new__  # CdrRecord._make without its length check: the tuples above


def _rung_device(lastapp: str, dstchannel: str) -> str:
    """The device a queue rang: the endpoint of its channel (``PJSIP/<endpoint>-<sequence>``).

    The dialplan names the device of an answered leg (``GraamDevice``); Asterisk runs nothing
    on a member's channel in time to name it on a ring left unanswered.
    """
    if lastapp != "Queue" or not dstchannel.startswith("PJSIP/"):
        return ""
    endpoint, dash, _ = dstchannel[6:].rpartition("-")
    return endpoint if dash else ""


def _epoch_us(name: str, text: str) -> int:
    if _EPOCH_US.fullmatch(text):  # what Asterisk writes: %ld.%06ld
        return int(text.replace(".", ""))
    seconds, dot, fraction = text.partition(".")
    if (
        not text.isascii()
        or not seconds.isdigit()
        or len(seconds) > 12
        or (dot and not (fraction.isdigit() and len(fraction) <= 6))
    ):
        raise MalformedCdr("bad-time", f"{name} {text[:40]!r} is not epoch seconds")
    return int(seconds) * 1_000_000 + (int(fraction.ljust(6, "0")) if fraction else 0)


def _seconds_us(name: str, text: str) -> int:
    if not text.isascii() or not _DECIMAL_SECONDS.fullmatch(text):
        raise MalformedCdr("bad-number", f"{name} {text[:40]!r} is not seconds")
    whole, _, fraction = text.partition(".")
    return int(whole) * 1_000_000 + (int(fraction.ljust(6, "0")) if fraction else 0)


def _natural(text: str) -> int | None:
    if text.isascii() and text.isdigit() and len(text) <= 19:
        number = int(text)
        if number <= MAX_ID:
            return number
    return None


def _tenant(code: str) -> int | None:
    """``t<id>``: the accountcode and tenantid every tenant's endpoint and route carries."""
    if not (code.startswith("t") and 1 < len(code) <= 19 and code.isascii()):
        return None
    digits = code[1:]
    if not digits.isdigit():  # ASCII digits only (checked above): [0-9]
        return None
    tenant_id = int(digits)
    return tenant_id if 0 < tenant_id <= MAX_ID else None


# ---- journal form ------------------------------------------------------------------------------


def record_to_json(record: CdrRecord) -> list[Any]:
    """A JSON-able list that ``record_from_json`` turns back into the same record, exactly."""
    return list(record)


def record_from_json(item: list[Any]) -> CdrRecord:
    if len(item) == _COLUMNS_1:  # journaled before an upgrade: the same rule decides billing
        direction, disposition, billsec_us = item[11], item[9], item[8]
        item = [*item, None, None, is_billable(direction, disposition, None, billsec_us), None]
    if len(item) == _COLUMNS_2:  # journaled before the user who forwarded the leg
        item = [*item, None]
    if len(item) != len(COLUMNS):
        raise ValueError(f"a journaled CDR has {len(COLUMNS)} fields, not {len(item)}")
    return CdrRecord._make(item)
