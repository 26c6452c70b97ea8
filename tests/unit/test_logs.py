from __future__ import annotations

import json
import logging

from graam_pbx.logs import JsonFormatter, KeyValueFormatter


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("graam_pbx.x", logging.WARNING, __file__, 1, msg, None, None)
    record.__dict__.update(extra)
    return record


def test_key_value_line_carries_extra_fields_and_quotes_spaces() -> None:
    line = KeyValueFormatter().format(_record("ami lost", tenant=12, reason="conn reset"))
    assert "\n" not in line
    assert "level=warning" in line
    assert 'msg="ami lost"' in line
    assert "tenant=12" in line
    assert 'reason="conn reset"' in line


def test_newlines_never_split_a_line() -> None:
    line = KeyValueFormatter().format(_record("a\nb", value="x\ny"))
    assert "\n" not in line


def test_json_line() -> None:
    body = json.loads(JsonFormatter().format(_record("hello", call_id="c1")))
    assert body["msg"] == "hello"
    assert body["call_id"] == "c1"
    assert body["ts"].endswith("+00:00")
