"""What an OAuth error says about itself: one description per error code (S7).

RFC 6749 §5.2 allows error_description only %x20-21 / %x23-5B / %x5D-7E, and a
description built from the request would reflect the caller's input into our
answers (and Authlib refuses such text with an exception: a 500). Authlib's own
descriptions are made from the request, so none of them is passed on; ours are
fixed texts, kept only when they stay within that character set."""

from __future__ import annotations

import re

from authlib.oauth2.rfc6749.errors import OAuth2Error

from userservice.i18n import N_

_ALLOWED = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,200}")

DESCRIPTIONS: dict[str, str] = {
    "invalid_request": N_(
        "The request is missing a required parameter, repeats or malforms one, "
        "or uses more than one client authentication method."
    ),
    "invalid_client": N_("Client authentication failed."),
    "invalid_grant": N_(
        "The grant or refresh token is invalid, expired, revoked, or was issued "
        "to another client or redirect URI."
    ),
    "unauthorized_client": N_("This client may not use this grant or response type."),
    "unsupported_grant_type": N_("The grant type is not supported."),
    "unsupported_response_type": N_("The response type is not supported; use code."),
    "invalid_scope": N_("The requested scope is invalid or exceeds what this client may get."),
    "access_denied": N_("The request was denied."),
    "login_required": N_("The user must sign in."),
    "consent_required": N_("The user must consent."),
    "interaction_required": N_("The user must interact with the authorization server."),
    "unmet_authentication_requirements": N_(
        "The user cannot sign in in the way this request requires."
    ),
    "account_selection_required": N_("The user must choose an account."),
    "request_not_supported": N_("The request parameter is not supported."),
    "request_uri_not_supported": N_("The request_uri parameter is not supported."),
    "registration_not_supported": N_("The registration parameter is not supported."),
    "invalid_token": N_("The access token is missing, invalid, or expired."),
    "insufficient_scope": N_("The access token lacks the scope this request needs."),
    "unsupported_token_type": N_("The token type is not supported."),
    "insecure_transport": N_("OAuth requires HTTPS."),
    "slow_down": N_("Too many requests; retry later."),
    "temporarily_unavailable": N_("The service is busy; retry later."),
}
_OTHER = N_("The request could not be processed.")


def error_description(error: str, text: str | None = None) -> str:
    """The description sent with `error`: `text` when it is one of our own fixed
    texts within RFC 6749 §5.2's characters, the code's fixed text otherwise."""
    if text is not None and _ALLOWED.fullmatch(text):
        return text
    return DESCRIPTIONS.get(error, _OTHER)


def cleaned(error: OAuth2Error) -> OAuth2Error:
    """An Authlib error with its description replaced by the code's fixed text
    (the rest, redirect URI and state included, kept)."""
    error.description = error_description(str(error.error))
    return error
