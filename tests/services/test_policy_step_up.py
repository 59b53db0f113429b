"""M12: the step-up rule on its own, without a server: which logins a sensitive
operation takes, when the account's second factor must be read to decide, and the
RFC 9470 §3 refusal it raises (with acr_values only where a factor exists)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.support.step_up_api import ALWAYS_STEP_UP, STEP_UP_WITH_FACTOR
from userservice.errors import Forbidden, StepUpRequired
from userservice.services.assurance import (
    ACR_MFA,
    HARDWARE_KEY,
    ONE_TIME_CODE,
    PASSWORD_ONLY,
    SOFTWARE_KEY,
    passkey_amr,
    with_second_factor,
)
from userservice.services.policy import (
    ADMIN_RECENT,
    POLICY,
    RECENT_AUTH_SECONDS,
    Caller,
    PendingStepUp,
    Rule,
    StepUp,
)

NOW = 1_900_000_000.0
MFA_LOGINS = (
    with_second_factor(ONE_TIME_CODE),
    with_second_factor(HARDWARE_KEY),
    passkey_amr(backup_eligible=False, user_verified=True),
    passkey_amr(backup_eligible=True, user_verified=True),
)
SINGLE_FACTOR_LOGINS = (
    PASSWORD_ONLY,
    (HARDWARE_KEY,),  # a passkey without user verification: one factor
    (SOFTWARE_KEY,),
    (),
)


@dataclass(frozen=True)
class Who:
    caller: Caller = Caller.FIRST_PARTY
    scopes: frozenset[str] = frozenset({"admin"})
    auth_time: int | None = int(NOW)
    has_admin_role: bool = True
    amr: tuple[str, ...] = PASSWORD_ONLY


def _outcome(rule: Rule, who: Who, has_factor: bool) -> str | None:
    """What the guard does: the sync check, then the factor, if asked for."""
    try:
        pending = rule.check(who, now=NOW)
        if pending is not None:
            pending.settle(has_factor)
    except StepUpRequired as refusal:
        assert refusal.max_age == RECENT_AUTH_SECONDS
        return f"step_up:{refusal.acr_values}"
    return None


def test_m12_the_sensitive_operations_carry_the_step_up() -> None:
    for operation in ALWAYS_STEP_UP:
        assert POLICY[operation].step_up is StepUp.ALWAYS, operation
    for operation in STEP_UP_WITH_FACTOR:
        assert POLICY[operation].step_up is StepUp.WITH_FACTOR, operation
    # Reading stays open to any login, and the rest have no step-up at all.
    unlisted = set(POLICY) - set(ALWAYS_STEP_UP) - set(STEP_UP_WITH_FACTOR)
    assert {POLICY[operation].step_up for operation in unlisted} == {None}
    assert ADMIN_RECENT.step_up is StepUp.ALWAYS


@pytest.mark.parametrize("amr", MFA_LOGINS)
def test_m12_a_recent_multi_factor_login_passes_without_reading_the_factor(
    amr: tuple[str, ...],
) -> None:
    for mode in StepUp:
        rule = Rule(frozenset({Caller.FIRST_PARTY}), step_up=mode)
        for age in (0, RECENT_AUTH_SECONDS):
            who = Who(auth_time=int(NOW) - age, amr=amr)
            # None: nothing left to decide, so the guard makes no database read.
            assert rule.check(who, now=NOW) is None


@pytest.mark.parametrize("amr", SINGLE_FACTOR_LOGINS)
def test_m12_always_a_recent_single_factor_login_is_enough_only_without_a_factor(
    amr: tuple[str, ...],
) -> None:
    rule = Rule(frozenset({Caller.FIRST_PARTY}), step_up=StepUp.ALWAYS)
    who = Who(auth_time=int(NOW) - 10, amr=amr)
    assert rule.check(who, now=NOW) == PendingStepUp(StepUp.ALWAYS, True, False)
    assert _outcome(rule, who, has_factor=False) is None
    assert _outcome(rule, who, has_factor=True) == f"step_up:{ACR_MFA}"


@pytest.mark.parametrize("amr", MFA_LOGINS + SINGLE_FACTOR_LOGINS)
@pytest.mark.parametrize("auth_time", [int(NOW) - RECENT_AUTH_SECONDS - 1, 0, None])
def test_m12_always_an_old_or_unknown_login_is_refused(
    amr: tuple[str, ...], auth_time: int | None
) -> None:
    rule = Rule(frozenset({Caller.FIRST_PARTY}), step_up=StepUp.ALWAYS)
    who = Who(auth_time=auth_time, amr=amr)
    # Without a factor a new login of any kind will do: no acr_values to ask for.
    assert _outcome(rule, who, has_factor=False) == "step_up:None"
    assert _outcome(rule, who, has_factor=True) == f"step_up:{ACR_MFA}"


@pytest.mark.parametrize("amr", MFA_LOGINS + SINGLE_FACTOR_LOGINS)
@pytest.mark.parametrize("age", [0, RECENT_AUTH_SECONDS, RECENT_AUTH_SECONDS + 1, 86_400])
def test_m12_with_factor_the_current_password_suffices_for_an_account_without_one(
    amr: tuple[str, ...], age: int
) -> None:
    """S3: a password change without a factor asks only for the current password."""
    rule = Rule(frozenset({Caller.FIRST_PARTY}), step_up=StepUp.WITH_FACTOR)
    who = Who(auth_time=int(NOW) - age, amr=amr)
    assert _outcome(rule, who, has_factor=False) is None
    wanted = age <= RECENT_AUTH_SECONDS and amr in MFA_LOGINS
    assert _outcome(rule, who, has_factor=True) == (None if wanted else f"step_up:{ACR_MFA}")


def test_m12_the_boundary_is_inclusive_and_the_clock_is_the_callers() -> None:
    rule = Rule(frozenset({Caller.FIRST_PARTY}), step_up=StepUp.ALWAYS)
    at_limit = Who(auth_time=int(NOW) - RECENT_AUTH_SECONDS)
    assert _outcome(rule, at_limit, has_factor=False) is None
    past = Who(auth_time=int(NOW) - RECENT_AUTH_SECONDS - 1)
    assert _outcome(rule, past, has_factor=False) == "step_up:None"
    # A login stamped in the future (a skewed replica) is not older than max_age.
    assert _outcome(rule, Who(auth_time=int(NOW) + 60), has_factor=False) is None


def test_m12_refusals_of_the_caller_come_before_the_step_up() -> None:
    """A third party or a non-administrator is refused outright (403), never told
    to log in again: a new login would not help it."""
    third = Who(caller=Caller.THIRD_PARTY, auth_time=None)
    with pytest.raises(Forbidden):
        POLICY["delete_me"].check(third, now=NOW)
    not_admin = Who(has_admin_role=False, auth_time=None)
    with pytest.raises(Forbidden):
        ADMIN_RECENT.check(not_admin, now=NOW)


def test_m12_the_refusal_names_what_to_ask_for() -> None:
    with pytest.raises(StepUpRequired) as with_factor:
        PendingStepUp(StepUp.ALWAYS, recent=True, multi_factor=False).settle(True)
    assert (with_factor.value.max_age, with_factor.value.acr_values) == (300, ACR_MFA)
    assert with_factor.value.code == "insufficient_user_authentication"
    with pytest.raises(StepUpRequired) as without:
        PendingStepUp(StepUp.ALWAYS, recent=False, multi_factor=True).settle(False)
    assert (without.value.max_age, without.value.acr_values) == (300, None)
