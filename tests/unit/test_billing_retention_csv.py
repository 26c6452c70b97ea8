"""The archive's CSV records (Postgres's COPY format) split and read back whatever the
chunking, and the retention cutoff's calendar."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from graam_pbx.billing import retention

# Text with what CSV must quote: commas, quotes, newlines, carriage returns.
VALUES = st.one_of(st.none(), st.text(alphabet=st.sampled_from('ab,"\n\r é'), max_size=8))


def postgres_field(value: str | None) -> str:
    """A field as Postgres's COPY ... CSV writes it (NULL: nothing; "": two quotes)."""
    if value is None:
        return ""
    if value == "" or any(c in value for c in ',"\n\r') or value == "\\.":
        return '"' + value.replace('"', '""') + '"'
    return value


def record(values: list[str | None]) -> str:
    return ",".join(postgres_field(v) for v in values) + "\n"


@given(
    st.lists(st.lists(VALUES, min_size=1, max_size=5), min_size=1, max_size=6),
    st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=40),
)
def test_records_come_back_whole_whatever_the_chunks(
    rows: list[list[str | None]], cuts: list[int]
) -> None:
    text = "".join(record(row) for row in rows)
    chunks, at = [], 0
    for cut in cuts:
        chunks.append(text[at : at + cut])
        at += cut
    chunks.append(text[at:])
    records = list(retention._records(iter(chunks)))
    assert records == [record(row) for row in rows]
    for row, raw in zip(rows, records, strict=True):
        fields = retention._raw_fields(raw)
        assert [retention._raw_value(f) for f in fields] == [v or "" for v in row]
        # An empty string stays distinguishable from NULL in the raw text.
        assert [f == retention.EMPTY for f in fields] == [v == "" for v in row]


def test_the_cutoff_is_the_same_day_years_before() -> None:
    assert retention.retention_cutoff(date(2036, 3, 5), 10) == date(2026, 3, 5)
    assert retention.retention_cutoff(date(2028, 2, 29), 10) == date(2018, 2, 28)
