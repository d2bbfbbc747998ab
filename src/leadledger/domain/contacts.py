"""Contact data as keys that match: the same mailbox however it is written, the same company however it is spelt.

Pure string rules (no network, no third-party code): an e-mail address is compared case-insensitively, with
plus-addressing removed for providers that deliver `name+tag@` to `name@`, and dots removed where the
provider ignores them (Gmail); a company name is compared without case, accents, punctuation, a leading
"the" or its legal form ("Acme, Inc." and "ACME Incorporated" are one company). An account is a company:
its name's key, or the domain of a work e-mail address when the company is not given.
"""

from __future__ import annotations

import re
import unicodedata

# providers that deliver name+anything@ to name@ (plus addressing)
PLUS_PROVIDERS = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "icloud.com", "me.com",
        "mac.com", "protonmail.com", "proton.me", "pm.me", "fastmail.com", "fastmail.fm", "yandex.com", "yandex.ru",
    }
)  # fmt: skip
# providers that ignore dots in the local part
DOTLESS_PROVIDERS = frozenset({"gmail.com", "googlemail.com"})
DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}
# personal mailbox providers: their domain says nothing about a company
FREE_MAIL = frozenset(
    {
        *PLUS_PROVIDERS, "yahoo.com", "yahoo.co.uk", "yahoo.fr", "ymail.com", "aol.com", "gmx.de", "gmx.net",
        "gmx.com", "web.de", "t-online.de", "mail.com", "mail.ru", "zoho.com", "qq.com", "163.com", "126.com",
        "orange.fr", "free.fr", "laposte.net", "libero.it", "hotmail.co.uk", "hotmail.fr", "live.co.uk", "btinternet.com",
    }
)  # fmt: skip
LEGAL_FORMS = frozenset(
    {
        "inc", "incorporated", "corp", "corporation", "co", "company", "llc", "llp", "lp", "ltd", "limited", "plc",
        "gmbh", "ag", "kg", "ug", "sa", "sas", "sarl", "srl", "spa", "bv", "nv", "oy", "ab", "as", "aps", "kk", "pty",
        "pte", "sl", "sro", "group", "holding", "holdings",
    }
)  # fmt: skip
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def fold(text: str) -> str:
    """Lower case without accents (é -> e, ß -> ss); other scripts are left as they are."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def email_key(email: str | None) -> str | None:
    """The mailbox an address delivers to: `Jo.Doe+news@GoogleMail.com` -> `jodoe@gmail.com`; None if no @."""
    if not email:
        return None
    text = email.strip().casefold()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return None
    domain = DOMAIN_ALIASES.get(domain, domain)
    if domain in PLUS_PROVIDERS:
        local = local.split("+", 1)[0]
    if domain in DOTLESS_PROVIDERS:
        local = local.replace(".", "")
    return f"{local}@{domain}" if local else None


_TRUNK = re.compile(r"\(0\)")
_DIGITS = re.compile(r"[^0-9]")


def phone_key(phone: str | None) -> str | None:
    """`+44 (0)20 7946-0958` -> `+442079460958`: a number written with its country code, in E.164. A number
    without one needs a region to read (the model's `phone_region`, at write time or in the quality scan)."""
    if not phone:
        return None
    text = phone.strip()
    if not text.startswith(("+", "00")):
        return None
    digits = _DIGITS.sub("", _TRUNK.sub("", text.removeprefix("00") if text.startswith("00") else text))
    return f"+{digits}" if 7 <= len(digits) <= 15 and digits[0] != "0" else None


def contact_keys(email: str | None, phone: str | None) -> dict[str, str | None]:
    """The match keys of a lead's contact data, as the `leads` row stores them."""
    return {"email_key": email_key(email), "phone_key": phone_key(phone)}


def lead_keys(email: str | None, phone: str | None, company: str | None) -> dict[str, str | None]:
    """Every key a `leads` row stores beside its contact data: the match keys and the account (one definition
    for every writer: the unit of work, the importer, the demo, history rebuilds, the migrations)."""
    return {**contact_keys(email, phone), "account_key": account_key(company, email)}


def email_domain(email: str | None) -> str | None:
    key = email_key(email)
    return key.rpartition("@")[2] if key else None


def company_key(company: str | None) -> str | None:
    """`The Acme Company, Inc.` -> `acme`; None when nothing is left."""
    if not company:
        return None
    words = [w for w in _NOT_WORD.split(fold(company).replace(".", "").replace("&", " and ")) if w]
    if words and words[0] == "the":
        words = words[1:]
    while len(words) > 1 and words[-1] in LEGAL_FORMS:
        words.pop()
    return " ".join(words) or None


def account_key(company: str | None, email: str | None) -> str | None:
    """The account a lead belongs to: its company's key, else its work e-mail domain (never a free-mail one)."""
    key = company_key(company)
    if key:
        return key
    domain = email_domain(email)
    if domain and domain not in FREE_MAIL:
        return domain
    return None
