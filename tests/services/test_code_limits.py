"""The second-factor guess limit as several windows (M1): `5/5minutes;20/day` by
default, every wrong code counted in each, so that a short window's rate does not
add up to some 1,440 guesses a day; the setting refuses what it cannot count."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import update

from tests.support.accounts import register
from tests.support.factors import now_code, wrong_code
from userservice.db.models import User
from userservice.errors import InvalidCode, Throttled
from userservice.services.assurance import ONE_TIME_CODE
from userservice.settings import Settings
from userservice.settings_factors import FactorSettings
from userservice.wiring import Services

IP = "192.0.2.7"
# A short window of one second, so that the test can wait it out, and a daily one.
SHORT_AND_DAILY = "2/second;3/day"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(second_factor_limit=SHORT_AND_DAILY)


def _enrolled(client: TestClient, services: Services, email: str) -> tuple[uuid.UUID, str]:
    user_id = uuid.UUID(register(client, email)["id"])
    with services.accounts.db.unit_of_work() as uow:
        uow.execute(update(User).where(User.id == user_id).values(email_verified=True))
    secret = services.factors.start_totp(user_id, ip=IP).secret
    services.factors.confirm_totp(user_id, now_code(secret, -1), ip=IP, locale="en")
    return user_id, secret


def _guess_wrong(services: Services, user_id: uuid.UUID, secret: str) -> None:
    with pytest.raises(InvalidCode):
        services.factors.verify(user_id, wrong_code(secret), ip=IP, locale="en")


def _wait_out_the_short_window() -> None:
    time.sleep(1.2)


def test_m1_the_daily_window_refuses_when_the_short_one_has_room(
    client: TestClient, services: Services
) -> None:
    ada, secret = _enrolled(client, services, "ada@example.com")
    bob, bob_secret = _enrolled(client, services, "bob@example.com")
    _guess_wrong(services, ada, secret)
    _guess_wrong(services, ada, secret)
    # The short window is full: refused for about its second.
    with pytest.raises(Throttled) as short:
        services.factors.verify(ada, wrong_code(secret), ip=IP, locale="en")
    assert short.value.retry_after <= 2

    _wait_out_the_short_window()
    _guess_wrong(services, ada, secret)  # the third of the day
    _wait_out_the_short_window()
    # The short window is empty again, the daily one full: even the right code
    # waits until the first failure of the day ages out.
    with pytest.raises(Throttled) as daily:
        services.factors.verify(ada, now_code(secret), ip=IP, locale="en")
    assert 86_400 - 60 <= daily.value.retry_after <= 86_400
    # Another account's windows are its own.
    assert services.factors.verify(bob, now_code(bob_secret), ip=IP, locale="en") == ONE_TIME_CODE


def test_m1_refused_guesses_are_not_counted_in_the_daily_window(
    client: TestClient, services: Services
) -> None:
    ada, secret = _enrolled(client, services, "ada@example.com")
    _guess_wrong(services, ada, secret)
    _guess_wrong(services, ada, secret)
    for _ in range(5):  # refused by the short window: no code was checked
        with pytest.raises(Throttled):
            services.factors.verify(ada, wrong_code(secret), ip=IP, locale="en")
    _wait_out_the_short_window()
    # Checked, not refused: the day has counted two failures, not seven.
    _guess_wrong(services, ada, secret)


def test_m1_the_default_limit_has_a_short_and_a_daily_window() -> None:
    assert FactorSettings.model_fields["second_factor_limit"].default == "5/5minutes;20/day"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("5/5minutes;", "is not a list of rate limits"),
        ("5/5minutes;twenty a day", "is not a list of rate limits"),
        ("5/minute;5/minute", "gives the same window twice"),
    ],
)
def test_m1_the_setting_refuses_windows_it_cannot_count(value: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        FactorSettings(second_factor_limit=value)


def test_m1_the_setting_takes_one_window_or_several() -> None:
    for value in ("5/5minutes", "5/5minutes;20/day", "3/minute;10/hour;20/day"):
        assert FactorSettings(second_factor_limit=value).second_factor_limit == value
