"""The JSON line encoder: orjson's speed, the standard library's output (ASCII
only, every control character escaped), so a line cannot end early (O6)."""

from __future__ import annotations

import datetime
import json
import uuid

import pytest

from userservice.observability.logs import encode_line

_STANDARD = json.JSONEncoder(separators=(",", ":"), default=str).encode


class Named:
    def __str__(self) -> str:
        return "named"


@pytest.mark.parametrize(
    "data",
    [
        {"every_ascii": "".join(chr(i) for i in range(128))},
        {"line_breaks": 'a\r\nb"}{"forged":1', "separators": "\u2028\u2029"},
        {"non_ascii": "José 王小明 🙂"},
        {"numbers": [0, -1, 1.5, 2**70, 1e300], "flags": [True, False, None]},
        {"when": datetime.datetime(2026, 12, 3, 21, 2, 43, tzinfo=datetime.UTC)},
        {"id": uuid.UUID(int=5), "other": Named()},
        {"nested": {"list": [{"a": "b"}]}},
    ],
)
def test_o6_a_line_is_what_the_standard_library_writes(data: dict[str, object]) -> None:
    line = encode_line(data)
    assert line == _STANDARD(data)
    assert line.isascii() and "\n" not in line and "\r" not in line and "\x7f" not in line
    assert json.loads(line) == json.loads(_STANDARD(data))
