"""Email domains an account proves it controls, and rules that grant roles by email domain."""

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from services.identity.domain.errors import InvalidDomain
from services.identity.domain.roles import GrantScope

TXT_RECORD_PREFIX = "_canopy-challenge"
TXT_VALUE_PREFIX = "canopy-domain-verification="

# Mail providers anyone can get an address at: a rule on them would reach strangers.
CONSUMER_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "outlook.de",
        "hotmail.com",
        "hotmail.de",
        "hotmail.co.uk",
        "live.com",
        "msn.com",
        "yahoo.com",
        "yahoo.de",
        "yahoo.co.uk",
        "ymail.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "gmx.de",
        "gmx.net",
        "gmx.com",
        "gmx.at",
        "web.de",
        "t-online.de",
        "freenet.de",
        "posteo.de",
        "mailbox.org",
        "proton.me",
        "protonmail.com",
        "pm.me",
        "tutanota.com",
        "tuta.io",
        "zoho.com",
        "yandex.com",
        "yandex.ru",
        "mail.ru",
        "qq.com",
        "163.com",
        "fastmail.com",
        "hey.com",
        "orange.fr",
        "libero.it",
        "example.com",
    }
)

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})+$")


def normalize_domain(value: str) -> str:
    """A business email domain, lower-case; refuses malformed and consumer mail domains."""
    domain = value.strip().lower().rstrip(".")
    if domain.startswith("@"):
        domain = domain[1:]
    if not domain:
        raise InvalidDomain("domain is required")
    if len(domain) > 253 or not _DOMAIN.match(domain) or domain.rsplit(".", 1)[1].isdigit():
        raise InvalidDomain(f"not a valid domain name: {value.strip()[:253]!r}")
    if domain in CONSUMER_DOMAINS:
        raise InvalidDomain(f"{domain} is a public mail provider: anyone can have an address there")
    return domain


def txt_record_name(domain: str) -> str:
    return f"{TXT_RECORD_PREFIX}.{domain}"


def txt_record_value(token: str) -> str:
    return f"{TXT_VALUE_PREFIX}{token}"


@dataclass(frozen=True)
class Domain:
    id: uuid.UUID
    domain: str
    verification_token: str
    verified_at: datetime | None
    created_at: datetime

    @property
    def verified(self) -> bool:
        return self.verified_at is not None

    def proven_by(self, records: list[str]) -> bool:
        """Whether the TXT records found at txt_record_name hold this domain's token."""
        wanted = txt_record_value(self.verification_token)
        return any(record.strip().strip('"') == wanted for record in records)


@dataclass(frozen=True)
class DomainRule:
    id: uuid.UUID
    domain_id: uuid.UUID
    domain: str
    role_id: uuid.UUID
    role: str
    scope: GrantScope
    created_at: datetime
