"""Who must sign in with a second factor (services/mfa_policy.py, M8, M13): `none`
until an administrator says `admins` or `all`, stored for every replica, any other
value refused, every change audited with who made it."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.support.storage import add_user
from userservice.db.backend import Database
from userservice.db.factors import MFA_REQUIRED_FOR, PolicyRepository
from userservice.db.models import AuditEvent
from userservice.errors import InvalidInput
from userservice.services.mfa_policy import REQUIRED_FOR, MfaPolicy

IP = "192.0.2.1"


def test_m8_default_is_none(database: Database) -> None:
    assert MfaPolicy(database).required_for() == "none"
    assert REQUIRED_FOR == ("none", "admins", "all")


def test_m8_set_is_stored_and_audited_with_the_actor(database: Database) -> None:
    root = add_user(database, "root@example.com", is_admin=True)
    policy = MfaPolicy(database)
    policy.set_required_for("admins", actor_id=root, ip=IP)
    # Another process (replica) reads the same rule.
    assert MfaPolicy(database).required_for() == "admins"
    policy.set_required_for("none", actor_id=root, ip=IP)
    assert policy.required_for() == "none"
    with database.unit_of_work(read_only=True) as uow:
        rows = uow.execute(
            select(AuditEvent.event, AuditEvent.actor_id, AuditEvent.ip, AuditEvent.details)
            .where(AuditEvent.event == "policy.mfa_changed")
            .order_by(AuditEvent.id)
        ).all()
    assert [(r[1], r[2], json.loads(r[3])) for r in rows] == [
        (root, IP, {"before": "none", "after": "admins"}),
        (root, IP, {"before": "admins", "after": "none"}),
    ]


@pytest.mark.parametrize("value", ["", "everyone", "All", "Admins", "admins ", "none\n"])
def test_m8_other_values_are_refused_and_change_nothing(database: Database, value: str) -> None:
    root = add_user(database, "root@example.com", is_admin=True)
    policy = MfaPolicy(database)
    policy.set_required_for("admins", actor_id=root, ip=IP)
    with pytest.raises(InvalidInput):
        policy.set_required_for(value, actor_id=root, ip=IP)
    assert policy.required_for() == "admins"


def test_m8_m13_an_unknown_stored_value_reads_as_the_strictest_rule(database: Database) -> None:
    with database.unit_of_work() as uow:
        PolicyRepository(uow).set(MFA_REQUIRED_FOR, "everyone")
    assert MfaPolicy(database).required_for() == "all"
