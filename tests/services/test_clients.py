"""Server-assigned client ids: unguessable, and usable as a command-line argument."""

from __future__ import annotations

import re

from userservice.services.clients import _new_client_id


def test_client_ids_are_random_urlsafe_and_never_look_like_an_option() -> None:
    ids = [_new_client_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    # 16 random bytes: 22 URL-safe characters; about 1 in 64 would start with "-".
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", i) for i in ids)
    assert any("-" in i for i in ids)
