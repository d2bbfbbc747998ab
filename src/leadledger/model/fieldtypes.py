"""Validators for the field types a model can declare (email, phone, date...), built on well-kept libraries.

They are handed to the domain as plain callables, so the domain itself stays free of third-party imports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlparse

import phonenumbers
from email_validator import EmailNotValidError, validate_email

FIELD_TYPES = ("text", "email", "phone", "date", "datetime", "number", "integer", "choice", "bool", "url")

Parser = Callable[[Any], tuple[Any, str | None]]


def parse_email(value: Any) -> tuple[Any, str | None]:
    try:
        # no DNS look-up: slow anywhere and impossible offline
        return validate_email(str(value).strip(), check_deliverability=False).normalized, None
    except EmailNotValidError as exc:
        return None, f"not a valid email address ({exc})"


def phone_parser(default_region: str | None) -> Parser:
    def parse_phone(value: Any) -> tuple[Any, str | None]:
        text = str(value).strip()
        try:
            number = phonenumbers.parse(text, default_region)
        except phonenumbers.NumberParseException:
            return None, f"{text!r} is not a phone number"
        if not phonenumbers.is_possible_number(number):
            return None, f"{text!r} is not a possible phone number"
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None

    return parse_phone


def parse_date(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, datetime):
        return value.date(), None
    if isinstance(value, date):
        return value, None
    try:
        return date.fromisoformat(str(value).strip()[:10]), None
    except ValueError:
        return None, f"{value!r} is not a date (YYYY-MM-DD)"


def parse_datetime(value: Any) -> tuple[Any, str | None]:
    """ISO 8601; a time without a zone is taken as UTC."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None, f"{value!r} is not a date and time (ISO 8601, e.g. 2026-11-24T10:00:00Z)"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC), None


def number_parser(minimum: float | None, maximum: float | None, integer: bool) -> Parser:
    def parse_number(value: Any) -> tuple[Any, str | None]:
        try:
            number: float | int = int(str(value).strip()) if integer else float(str(value).strip().replace(",", ""))
        except ValueError:
            return None, f"{value!r} is not {'a whole number' if integer else 'a number'}"
        if number != number or number in (float("inf"), float("-inf")):
            return None, f"{value!r} is not a finite number"
        if minimum is not None and number < minimum:
            return None, f"must be at least {minimum:g}"
        if maximum is not None and number > maximum:
            return None, f"must be at most {maximum:g}"
        return number, None

    return parse_number


def choice_parser(choices: Sequence[str]) -> Parser:
    allowed = tuple(choices)

    def parse_choice(value: Any) -> tuple[Any, str | None]:
        text = str(value).strip()
        if text not in allowed:
            return None, f"{text!r} is not one of: {', '.join(allowed)}"
        return text, None

    return parse_choice


def parse_bool(value: Any) -> tuple[Any, str | None]:
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "y"):
        return True, None
    if text in ("false", "no", "0", "n"):
        return False, None
    return None, f"{value!r} is not yes/no"


def parse_url(value: Any) -> tuple[Any, str | None]:
    text = str(value).strip()
    parts = urlparse(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None, f"{text!r} is not an http(s) address"
    return text, None


def parse_text(value: Any) -> tuple[Any, str | None]:
    text = str(value).strip()
    if len(text) > 10_000:
        return None, "is longer than 10,000 characters"
    return text, None


def parser_for(
    type_name: str,
    *,
    choices: Sequence[str] = (),
    minimum: float | None = None,
    maximum: float | None = None,
    phone_region: str | None = None,
) -> Parser:
    """The validator for one declared field type."""
    if type_name == "email":
        return parse_email
    if type_name == "phone":
        return phone_parser(phone_region)
    if type_name == "date":
        return parse_date
    if type_name == "datetime":
        return parse_datetime
    if type_name in ("number", "integer"):
        return number_parser(minimum, maximum, type_name == "integer")
    if type_name == "choice":
        return choice_parser(choices)
    if type_name == "bool":
        return parse_bool
    if type_name == "url":
        return parse_url
    return parse_text
