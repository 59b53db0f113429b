"""The services of one process, built from the settings and its database (the
wiring create_app installs on the application)."""

from __future__ import annotations

from functools import partial

from userservice.db import migrate
from userservice.db.engine import Database
from userservice.i18n import Catalogs
from userservice.oauth.server import OAuthServer
from userservice.oauth.token_endpoint import TokenEndpoint
from userservice.observability.metrics import NoMetrics
from userservice.security.counters import Counters
from userservice.security.mail_limits import MailThrottle
from userservice.security.passwords import PasswordHasher
from userservice.security.relying_party import relying_party
from userservice.security.throttle import LoginThrottle
from userservice.services.access_tokens import TokenSettings
from userservice.services.account_mail import Mailer
from userservice.services.account_tokens import AccountTokens
from userservice.services.accounts import AccountService
from userservice.services.at_rest import AtRest
from userservice.services.audit_log import AuditLog
from userservice.services.authn import Authenticator
from userservice.services.clients import ClientService
from userservice.services.consents import ConsentService
from userservice.services.devices import DeviceCookies
from userservice.services.email_change import EmailChange
from userservice.services.factors import SecondFactors
from userservice.services.half_logins import HalfLogins
from userservice.services.id_tokens import IdTokenService
from userservice.services.keys import KeyStore
from userservice.services.mail import MailOutbox
from userservice.services.mfa_policy import MfaPolicy
from userservice.services.passkeys import Passkeys
from userservice.services.password_reset import PasswordReset
from userservice.services.preferences import PreferenceService
from userservice.services.privacy import Privacy
from userservice.services.readiness import Readiness
from userservice.services.sessions import SessionService
from userservice.services.signup import SignUp
from userservice.services.token_status import TokenStatus
from userservice.services.tokens import TokenService
from userservice.services.user_admin import UserAdministration
from userservice.services.verification import Verification
from userservice.settings import Settings
from userservice.web.templating import page_templates
from userservice.wiring import Services


def open_counters(settings: Settings) -> Counters:
    url = settings.redis_url.get_secret_value() if settings.redis_url else None
    return Counters(url, settings.redis_timeout_seconds)


def build_account_service(
    settings: Settings,
    db: Database,
    counters: Counters | None = None,
    metrics: NoMetrics | None = None,
) -> AccountService:
    metrics = metrics or NoMetrics()
    hasher = PasswordHasher(
        settings.argon2_memory_kib,
        settings.argon2_time_cost,
        settings.argon2_parallelism,
        settings.max_concurrent_hashes,
        on_wait=metrics.hash_queue_wait if metrics.enabled else None,
    )
    throttle = LoginThrottle(
        settings.login_limit_per_account, settings.login_limit_per_ip, counters
    )
    devices = DeviceCookies(db, AtRest.for_settings(settings))
    return AccountService(
        db,
        hasher,
        throttle,
        devices,
        registration_open=settings.registration_open,
        require_verified_email=settings.require_verified_email,
        metrics=metrics,
    )


def build_services(settings: Settings, db: Database, metrics: NoMetrics | None = None) -> Services:
    metrics = metrics or NoMetrics()
    keys = KeyStore.for_settings(db, settings)
    counters = open_counters(settings)
    accounts = build_account_service(settings, db, counters, metrics)
    tokens = TokenService(
        db,
        keys,
        TokenSettings(
            issuer=settings.issuer,
            access_ttl=settings.access_token_ttl_seconds,
            refresh_idle_ttl=settings.refresh_token_idle_ttl_seconds,
            refresh_absolute_ttl=settings.refresh_token_absolute_ttl_seconds,
            alg=settings.access_token_alg,
        ),
        metrics,
    )
    status = TokenStatus(db, keys, settings.issuer, settings.refresh_token_idle_ttl_seconds)
    id_tokens = IdTokenService(keys, settings.issuer, settings.id_token_ttl_seconds)
    catalogs = Catalogs.load()
    mail = MailOutbox.for_settings(db, settings, catalogs)
    mailer = Mailer(
        AccountTokens(
            verification_ttl=settings.email_verification_ttl_seconds,
            reset_ttl=settings.password_reset_ttl_seconds,
            undo_ttl=settings.email_change_undo_ttl_seconds,
        ),
        mail,
        MailThrottle(
            settings.mail_limit_per_address,
            settings.mail_limit_per_ip,
            counters,
            on_refused=partial(metrics.throttled, "mail"),
        ),
    )
    factors = SecondFactors(
        db,
        AtRest.for_settings(settings),
        mailer,
        counters,
        limit=settings.second_factor_limit,
        issuer=settings.totp_issuer or settings.app_name,
        metrics=metrics,
    )
    return Services(
        settings=settings,
        keys=keys,
        counters=counters,
        accounts=accounts,
        user_admin=UserAdministration(db),
        tokens=tokens,
        authenticator=Authenticator(db, keys, accounts, settings.issuer),
        clients=ClientService(db),
        sessions=SessionService(
            db, settings.session_idle_ttl_seconds, settings.session_absolute_ttl_seconds
        ),
        consents=ConsentService(db),
        token_endpoint=TokenEndpoint(db, accounts, tokens, status, id_tokens, metrics),
        oauth_server=OAuthServer(db, settings.issuer),
        readiness=Readiness(
            partial(migrate.revision_of, db), migrate.head_revision(), keys, counters
        ),
        mail=mail,
        signup=SignUp(db, accounts, mailer),
        verification=Verification(db, mailer),
        password_reset=PasswordReset(db, accounts, mailer),
        preferences=PreferenceService(db),
        email_change=EmailChange(db, accounts, mailer, factors),
        privacy=Privacy(db),
        audit_log=AuditLog(db),
        pages=page_templates(catalogs, settings.app_name),
        metrics=metrics,
        factors=factors,
        half_logins=HalfLogins(db, settings.half_login_ttl_seconds),
        mfa_policy=MfaPolicy(db),
        passkeys=Passkeys(
            db,
            AtRest.for_settings(settings),
            mailer,
            # M9: the relying party from the configured public URL, never a Host header.
            relying_party(settings.issuer, settings.passkey_rp_name or settings.app_name),
            challenge_ttl=settings.passkey_challenge_ttl_seconds,
            throttle=accounts.throttle,
        ),
    )
