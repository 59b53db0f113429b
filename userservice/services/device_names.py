"""What a browser session is called on the account page and in the API: the
browser and system its User-Agent names ("Chrome 120 on Linux"), so that a user
can tell their sessions apart. The header is the client's own claim: it names a
session, it proves nothing."""

from __future__ import annotations

from dataclasses import dataclass

from ua_parser import parse

from userservice.i18n import N_

UNKNOWN_DEVICE = N_("Unknown device")
# ua-parser's name for anything its patterns do not recognise.
_UNRECOGNISED = "Other"


@dataclass(frozen=True, slots=True)
class DeviceName:
    browser: str | None  # "Chrome 120"
    system: str | None  # "Linux"

    def __str__(self) -> str:
        if self.browser and self.system:
            return f"{self.browser} on {self.system}"
        return self.browser or self.system or UNKNOWN_DEVICE


def _known(family: str | None) -> str | None:
    return None if not family or family == _UNRECOGNISED else family


def device_name(user_agent: str | None) -> DeviceName:
    if not user_agent:
        return DeviceName(None, None)
    found = parse(user_agent).with_defaults()
    browser = _known(found.user_agent.family)
    if browser is not None and found.user_agent.major:
        browser = f"{browser} {found.user_agent.major}"
    return DeviceName(browser, _known(found.os.family))
