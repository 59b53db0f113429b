"""What every OAuth error response must look like on the wire (S7)."""

from __future__ import annotations

import re
from collections.abc import Iterable

# RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
_DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
# Put into fuzzed values: seen in a response, it can only have come from the request.
ECHO_MARK = "Qz7echo"


def assert_safe_description(description: object, sent: Iterable[str] = ()) -> None:
    """Within RFC 6749 §5.2's characters, and echoing none of the values sent
    (values of a few characters are left out: they occur in any English text)."""
    assert isinstance(description, str), description
    assert _DESCRIPTION.fullmatch(description), repr(description)
    assert ECHO_MARK not in description, description
    for value in sent:
        if len(value.strip()) >= 6:
            assert value not in description, (value, description)
