"""Changing the sign-in address (services/email_change.py): nothing changes until the
new address proves itself, a taken address is answered like any other and its owner
told (L20); the old address can undo the change, which ends everything and needs a
password reset; both links work once, also under concurrency (L21)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.support.accounts import PASSWORD, bearer, login, register
from tests.support.journeys import last_token, link_in, mails, text_of
from tests.support.pages import SESSION, session_opens, web_login
from userservice.db.models import AccountToken, AuditEvent, User
from userservice.errors import (
    Conflict,
    EmailTaken,
    Forbidden,
    InvalidAccountToken,
    InvalidInput,
)
from userservice.records import UserRecord
from userservice.services.account_tokens import Purpose
from userservice.services.email_change import masked
from userservice.wiring import Services

ADA, NEW, BOB = "ada@example.com", "ada@example.org", "bob@example.com"
IP = "192.0.2.7"


def ask(services: Services, user_id: str, email: str, password: str | None = PASSWORD) -> None:
    services.email_change.request(uuid.UUID(user_id), email, password, ip=IP, locale="en")


def account(services: Services, user_id: str) -> User:
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        user = uow.get(User, uuid.UUID(user_id))
        assert user is not None
        uow.expunge(user)
        return user


def changed(client: TestClient, services: Services) -> tuple[str, str]:
    """Ada, registered, with her address changed to NEW: (her id, the undo token)."""
    ada = register(client, ADA)["id"]
    ask(services, ada, NEW)
    services.email_change.confirm(last_token(client.app, NEW, "email_change_verify"), ip=IP)  # type: ignore[arg-type]
    return ada, last_token(client.app, ADA, "email_change_undo")  # type: ignore[arg-type]


def in_parallel(work: Callable[[], object], count: int = 20) -> list[str]:
    """Run `work` in `count` threads released at once: what each ended with."""
    barrier = threading.Barrier(count)
    outcomes: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            work()
            outcome = "ok"
        except InvalidAccountToken:
            outcome = "invalid"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return sorted(outcomes)


def test_a_request_mails_only_the_new_address_and_changes_nothing(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    ada = register(client, ADA)["id"]
    before = len(mails(app))
    ask(services, ada, "Ada@Example.ORG")
    (mail,) = mails(app, NEW, "email_change_verify")
    assert link_in(mail).startswith("https://testserver/confirm-email-change?token=")
    assert len(mails(app)) == before + 1
    assert account(services, ada).email == ADA
    login(client, ADA)
    assert not mails(app, NEW, "email_change_undo")


def test_a_taken_address_tells_its_owner_and_changes_nothing_l20(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    ada = register(client, ADA)["id"]
    bob = register(client, BOB)["id"]
    assert ask(services, ada, "BOB@example.com") is None  # the same outcome as any address
    (notice,) = mails(app, BOB, "email_change_taken")
    assert "nothing changed" in text_of(notice)
    assert "token=" not in text_of(notice)
    assert not mails(app, BOB, "email_change_verify")
    assert account(services, ada).email == ADA and account(services, bob).email == BOB
    login(client, ADA)
    login(client, BOB)


def test_the_current_password_is_required(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    ada = register(client, ADA)["id"]
    for password in (None, "not the password"):
        with pytest.raises(Forbidden):
            ask(services, ada, NEW, password)
    with pytest.raises(InvalidInput):
        ask(services, ada, "not an address")
    with pytest.raises(InvalidInput):
        ask(services, ada, "ADA@example.com")  # its own
    assert not mails(app, NEW)


def test_confirm_moves_the_address_and_mails_an_undo_to_the_old_one_l21(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    ada = register(client, ADA)["id"]
    verify = last_token(app, ADA, "verify_email")
    client.post("/users/password-reset", json={"email": ADA})
    reset = last_token(app, ADA, "reset_password")
    ask(services, ada, NEW)
    token = last_token(app, NEW, "email_change_verify")
    services.email_change.check(token)  # a check leaves it usable
    assert services.email_change.confirm(token, ip=IP) == NEW
    user = account(services, ada)
    assert (user.email, user.email_verified) == (NEW, True)
    (undo,) = mails(app, ADA, "email_change_undo")
    assert link_in(undo).startswith("https://testserver/undo-email-change?token=")
    assert masked(NEW) == "a•••@example.org" and "a•••@example.org" in text_of(undo)
    assert NEW not in text_of(undo)
    assert "168 hours" in text_of(undo)
    login(client, NEW)
    # Links for the old address die with it (E8).
    with pytest.raises(InvalidAccountToken):
        services.verification.confirm(verify)
    with pytest.raises(InvalidAccountToken):
        services.password_reset.check(reset)
    with pytest.raises(InvalidAccountToken):
        services.email_change.confirm(token, ip=IP)


def test_a_change_link_works_once_under_concurrency_l21(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    ada = register(client, ADA)["id"]
    ask(services, ada, NEW)
    token = last_token(app, NEW, "email_change_verify")
    outcomes = in_parallel(lambda: services.email_change.confirm(token, ip=IP))
    assert outcomes == ["invalid"] * 19 + ["ok"]
    assert len(mails(app, ADA, "email_change_undo")) == 1


def test_only_the_newest_change_link_works(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    ada = register(client, ADA)["id"]
    register(client, BOB)
    ask(services, ada, NEW)
    first = last_token(app, NEW, "email_change_verify")
    # A later request kills the earlier link, whether its address is free or taken:
    # a link still working would tell which (L20).
    ask(services, ada, BOB)
    with pytest.raises(InvalidAccountToken):
        services.email_change.confirm(first, ip=IP)
    assert account(services, ada).email == ADA


def test_a_link_to_an_address_taken_meanwhile_is_invalid(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    ada = register(client, ADA)["id"]
    ask(services, ada, NEW)
    token = last_token(app, NEW, "email_change_verify")
    register(client, NEW)
    with pytest.raises(InvalidAccountToken):
        services.email_change.check(token)
    with pytest.raises(InvalidAccountToken):
        services.email_change.confirm(token, ip=IP)
    assert account(services, ada).email == ADA


def test_undo_restores_the_address_and_ends_everything_l21(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    ada = register(client, ADA)["id"]
    tokens = login(client, ADA)
    assert web_login(client, ADA).status_code == 303
    session = client.cookies.get(SESSION)
    assert session and session_opens(app, session)
    ask(services, ada, NEW)
    services.email_change.confirm(last_token(app, NEW, "email_change_verify"), ip=IP)
    undo = last_token(app, ADA, "email_change_undo")
    services.email_change.check_undo(undo)
    services.email_change.undo(undo, ip=IP, locale="en")
    user = account(services, ada)
    assert (user.email, user.email_verified) == (ADA, True)
    assert not session_opens(app, session)
    assert client.get("/users/me", headers=bearer(tokens["access_token"])).status_code == 401
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert client.post("/oauth/token", data=refresh).status_code == 400
    for email in (ADA, NEW):
        refused = client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": email, "password": PASSWORD},
        )
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    # The restored address gets the ordinary reset link, which sets a password.
    reset = last_token(app, ADA, "reset_password")
    body = {"token": reset, "password": "a fresh passphrase for ada"}
    assert client.post("/users/password-reset/confirm", json=body).status_code == 204
    login(client, ADA, "a fresh passphrase for ada")


def test_an_undo_link_works_once_under_concurrency_l21(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    _ada, undo = changed(client, services)
    outcomes = in_parallel(lambda: services.email_change.undo(undo, ip=IP, locale="en"))
    assert outcomes == ["invalid"] * 19 + ["ok"]
    assert len(mails(app, ADA, "reset_password")) == 1


def test_no_second_change_while_an_undo_is_pending(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    ada, undo = changed(client, services)
    # A chain of changes would take the address the undo comes from out of reach.
    with pytest.raises(Conflict):
        ask(services, ada, "ada@example.net")
    assert not mails(app, "ada@example.net")
    services.email_change.undo(undo, ip=IP, locale="en")
    assert account(services, ada).email == ADA


def test_an_undo_after_the_address_changed_again_is_invalid(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    ada, undo = changed(client, services)
    with services.accounts.db.unit_of_work() as uow:
        # As another route (an administrator, say) would move it.
        uow.execute(update(User).where(User.id == uuid.UUID(ada)).values(email=ADA))
    with pytest.raises(InvalidAccountToken):
        services.email_change.undo(undo, ip=IP, locale="en")


def test_an_undo_when_the_old_address_is_taken_again_is_invalid(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    ada, undo = changed(client, services)
    # By the one route that ignores the old address's reservation: an operator
    # creating an administrator (userservice create-admin).
    services.accounts.register(ADA, PASSWORD, None, admin=True)
    with pytest.raises(InvalidAccountToken):
        services.email_change.check_undo(undo)
    with pytest.raises(InvalidAccountToken):
        services.email_change.undo(undo, ip=IP, locale="en")
    assert account(services, ada).email == NEW
    login(client, NEW)


def test_expired_links_are_invalid(client: TestClient, app: FastAPI, services: Services) -> None:
    ada = register(client, ADA)["id"]
    ask(services, ada, NEW)
    change = last_token(app, NEW, "email_change_verify")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with services.accounts.db.unit_of_work() as uow:
        uow.execute(update(AccountToken).values(expires_at=past))
    with pytest.raises(InvalidAccountToken):
        services.email_change.confirm(change, ip=IP)
    ask(services, ada, NEW)
    services.email_change.confirm(last_token(app, NEW, "email_change_verify"), ip=IP)
    undo = last_token(app, ADA, "email_change_undo")
    with services.accounts.db.unit_of_work() as uow:
        uow.execute(
            update(AccountToken)
            .where(AccountToken.purpose == Purpose.UNDO_EMAIL_CHANGE)
            .values(expires_at=past)
        )
    with pytest.raises(InvalidAccountToken):
        services.email_change.undo(undo, ip=IP, locale="en")
    # An expired undo is no pending one: the address may change again.
    ask(services, ada, "ada@example.net")
    assert mails(app, "ada@example.net", "email_change_verify")


def test_other_purposes_tokens_are_refused(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    ada = register(client, ADA)["id"]
    verify = last_token(app, ADA, "verify_email")
    for attempt in (
        lambda: services.email_change.confirm(verify, ip=IP),
        lambda: services.email_change.undo(verify, ip=IP, locale="en"),
    ):
        with pytest.raises(InvalidAccountToken):
            attempt()
    ask(services, ada, NEW)
    change = last_token(app, NEW, "email_change_verify")
    with pytest.raises(InvalidAccountToken):
        services.email_change.undo(change, ip=IP, locale="en")
    with pytest.raises(InvalidAccountToken):
        services.verification.confirm(change)
    services.email_change.confirm(change, ip=IP)
    undo = last_token(app, ADA, "email_change_undo")
    with pytest.raises(InvalidAccountToken):
        services.email_change.confirm(undo, ip=IP)
    with pytest.raises(InvalidAccountToken):
        services.password_reset.check(undo)
    assert account(services, ada).email == NEW


def test_each_step_is_stored_without_an_address_l25(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    ada, undo = changed(client, services)
    services.email_change.undo(undo, ip=IP, locale="en")
    with services.accounts.db.unit_of_work(read_only=True) as uow:
        rows = uow.execute(
            select(AuditEvent.event, AuditEvent.ip, AuditEvent.details)
            .where(AuditEvent.user_id == uuid.UUID(ada))
            .order_by(AuditEvent.id)
        ).all()
    events = [row[0] for row in rows if row[0].startswith("email_change.")]
    assert events == ["email_change.requested", "email_change.confirmed", "email_change.undone"]
    assert {row[1] for row in rows if row[0].startswith("email_change.")} == {IP}
    text = repr(rows)
    assert "@" not in text and undo not in text


def sign_up(services: Services, email: str, *, reveal: bool) -> UserRecord | None:
    return services.signup.register(
        email, "another person's passphrase", None, ip=IP, locale="en", reveal=reveal
    )


def expire_undo_links(services: Services) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with services.accounts.db.unit_of_work() as uow:
        uow.execute(
            update(AccountToken)
            .where(AccountToken.purpose == Purpose.UNDO_EMAIL_CHANGE)
            .values(expires_at=past)
        )


def test_the_old_address_cannot_be_signed_up_while_its_undo_is_pending_l21(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    # Whoever changed the address knew the password: signing up with the old one
    # would make the undo link useless and send the next reset link to them.
    ada, undo = changed(client, services)
    before = len(mails(app))
    with pytest.raises(EmailTaken):
        sign_up(services, ADA, reveal=True)
    assert sign_up(services, "Ada@Example.com", reveal=False) is None
    # Answered like a taken address, but its holder is mid-undo: nobody is mailed.
    assert len(mails(app)) == before
    services.email_change.check_undo(undo)
    services.email_change.undo(undo, ip=IP, locale="en")
    assert account(services, ada).email == ADA


def test_a_reserved_address_is_asked_for_like_a_taken_one_and_nobody_mailed_l21(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    ada, undo = changed(client, services)
    bob = register(client, BOB)["id"]
    before = len(mails(app))
    assert ask(services, bob, ADA) is None  # the answer of any address (L20)
    assert len(mails(app)) == before
    services.email_change.undo(undo, ip=IP, locale="en")
    assert account(services, ada).email == ADA
    assert account(services, bob).email == BOB


def test_a_change_link_to_an_address_reserved_meanwhile_is_invalid_l21(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    bob = register(client, BOB)["id"]
    ask(services, bob, "bob@example.net")
    bobs = last_token(app, "bob@example.net", "email_change_verify")
    ada, undo = changed(client, services)
    with services.accounts.db.unit_of_work() as uow:
        # Bob's link names Ada's old address, as if he had asked for it before she had it.
        uow.execute(
            update(AccountToken)
            .where(AccountToken.purpose == Purpose.CHANGE_EMAIL, AccountToken.email != NEW)
            .values(email=ADA)
        )
    with pytest.raises(InvalidAccountToken):
        services.email_change.confirm(bobs, ip=IP)
    assert account(services, bob).email == BOB
    services.email_change.undo(undo, ip=IP, locale="en")
    assert account(services, ada).email == ADA


def test_once_the_undo_link_expired_the_old_address_is_free(
    client: TestClient, app: FastAPI, services: Services
) -> None:
    ada, undo = changed(client, services)
    expire_undo_links(services)
    created = sign_up(services, ADA, reveal=True)
    assert created is not None and created.email == ADA
    with pytest.raises(InvalidAccountToken):
        services.email_change.undo(undo, ip=IP, locale="en")
    assert account(services, ada).email == NEW
