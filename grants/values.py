"""The rule of each kind of cell value, and the canonical form it is compared and stored in.

Every normaliser takes a cell's text and returns its canonical value, or raises `InvalidValue`
whose text says what is wrong and what to do, for the person who filled in the form. The store
normalises the directory's people with the same functions, so a form and a record compare like
with like. Interpretations of the spec (delegate-form.md, "How values are read and compared"):

- Names: letters (Unicode L*), marks (M*), the space and the ideographic space U+3000 that Japanese
  input methods type, and `'` `-` `.`; at least one letter; at most 100 characters after NFC.
  Other spaces (e.g. the invisible no-break space) are refused, since names compare exactly.
- Email: exactly the spec's character rule. The local part's dots are not policed (no rule against
  `..` or a trailing `.`): legacy Japanese mobile addresses have them. The domain is ASCII (write an
  internationalised domain in its `xn--` form) and needs at least two labels (`user@localhost` is
  refused). Canonical form: lower case.
- Phone: ten NANP digits, area code and exchange starting with 2-9, optionally after `1` or `+1`
  (so `1-415-555-0100`, as the utility itself writes numbers, and E.164 `+14155550100` pass);
  the area code may stand in parentheses; groups may be separated by one space, `.` or `-`.
  Extensions are refused: the login holds a 10-digit number and an extension would be dropped
  silently. Digits are ASCII only. Canonical form: the 10 digits.
- Account ID: exactly 10 ASCII digits, never padded.
"""

from __future__ import annotations

import re
import unicodedata

from grants.form import AccessLevel, PhoneType

MAX_NAME_LENGTH = 100
MAX_EMAIL_LENGTH = 254
ACCOUNT_ID_DIGITS = 10
FORBIDDEN_CHARS = "=:"

_NAME_PUNCTUATION = frozenset(" \u3000'-.")
_EMAIL_LOCAL_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-+._!#$%&'*/?^`{|}~"
)
_DOMAIN_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})+")
_PHONE = re.compile(
    r"(?:\+?1[ .-]?)?"
    r"(?:\((?P<area_p>[0-9]{3})\)[ .-]?|(?P<area>[0-9]{3})[ .-]?)"
    r"(?P<exchange>[0-9]{3})[ .-]?(?P<line>[0-9]{4})"
)
_EXTENSION = re.compile(r"(?i)(?:x|ext|#)\.?\s*[0-9]+$")
_ACCOUNT_ID = re.compile(r"[0-9]{10}")
_DIGITS = re.compile(r"[0-9]+")

_PHONE_TYPES = {t.value.casefold(): t for t in PhoneType}
_ACCESS_LEVELS = {a.value.casefold(): a for a in AccessLevel}


class InvalidValue(ValueError):
    """A value breaks its rule; its text says why and what to do, for the person who wrote it."""


def clean(text: str) -> str:
    """The text without surrounding white space, NFC-normalised (how every cell is read)."""
    return unicodedata.normalize("NFC", text.strip())


def forbidden_chars(text: str) -> str:
    """The forbidden characters (`=`, `:`) the text holds, in that order; '' when none."""
    return "".join(c for c in FORBIDDEN_CHARS if c in text)


def normalise_name(text: str) -> str:
    """The name, stripped and NFC; raises InvalidValue when it is not a name."""
    name = clean(text)
    bad = [c for c in dict.fromkeys(name) if not _is_name_char(c)]
    if bad:
        raise InvalidValue(
            f"A name may hold only letters, spaces and the characters ' - . "
            f"Remove {_describe_chars(bad)}."
        )
    if not any(unicodedata.category(c)[0] == "L" for c in name):
        raise InvalidValue("A name needs at least one letter. Write the name as on the login.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidValue(
            f"A name may be at most {MAX_NAME_LENGTH} characters long; this one has {len(name)}."
        )
    return name


def normalise_email(text: str) -> str:
    """The email address in lower case; raises InvalidValue when it is not a valid address."""
    email = clean(text)
    example = "Write it as name@example.com, as on the login."
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidValue(
            f"An email address may be at most {MAX_EMAIL_LENGTH} characters long; "
            f"this one has {len(email)}."
        )
    if email.count("@") != 1:
        raise InvalidValue(f"An email address holds exactly one @. {example}")
    local, domain = email.split("@")
    if not local:
        raise InvalidValue(f"The part before the @ is missing. {example}")
    bad = [c for c in dict.fromkeys(local) if c not in _EMAIL_LOCAL_CHARS]
    if bad:
        raise InvalidValue(
            f"The part before the @ may hold only ASCII letters, digits and - + . _ ! # $ % & ' "
            f"* / ? ^ ` {{ | }} ~. Remove {_describe_chars(bad)}."
        )
    if not _DOMAIN.fullmatch(domain):
        raise InvalidValue(
            f"The part after the @ must be a domain such as example.com: names of letters, "
            f"digits and inner hyphens, separated by dots. {example}"
        )
    return email.lower()


def normalise_phone(text: str) -> str:
    """The phone number's 10 digits; raises InvalidValue when it is not a North American number."""
    phone = clean(text)
    how = "Write a 10-digit North American number such as 415-555-0100."
    m = _PHONE.fullmatch(phone)
    if m is None:
        if _EXTENSION.search(phone):
            raise InvalidValue(f"Leave out the extension. {how}")
        raise InvalidValue(f"This is not a phone number this form accepts. {how}")
    area = m["area"] or m["area_p"]
    if area[0] in "01":
        raise InvalidValue(f"An area code cannot start with 0 or 1 (here {area}). {how}")
    if m["exchange"][0] in "01":
        raise InvalidValue(
            f"The three digits after the area code cannot start with 0 or 1 "
            f"(here {m['exchange']}). {how}"
        )
    return area + m["exchange"] + m["line"]


def normalise_account_id(text: str, *, numeric: bool = False) -> str:
    """The 10-digit Account ID; raises InvalidValue otherwise (`numeric`: the cell was a number)."""
    account_id = clean(text)
    if _ACCOUNT_ID.fullmatch(account_id):
        return account_id
    if numeric and _DIGITS.fullmatch(account_id) and len(account_id) < ACCOUNT_ID_DIGITS:
        lost = ACCOUNT_ID_DIGITS - len(account_id)
        raise InvalidValue(
            f"Excel stored this Account ID as a number and dropped its "
            f"{'leading zero' if lost == 1 else f'{lost} leading zeros'}: {account_id} has only "
            f"{len(account_id)} digits. Format the Account ID column as Text, then type the "
            f"10-digit ID again with its leading zeros."
        )
    if _DIGITS.fullmatch(account_id):
        raise InvalidValue(
            f"An Account ID has exactly 10 digits; this one has {len(account_id)}. "
            f"Type it as on the bill, leading zeros included."
        )
    raise InvalidValue(
        "An Account ID is exactly 10 digits and nothing else (no spaces, dashes or letters). "
        "Type it as on the bill, leading zeros included."
    )


def normalise_phone_type(text: str) -> PhoneType:
    """The phone type in its canonical spelling, whatever the case; else raises InvalidValue."""
    found = _PHONE_TYPES.get(clean(text).casefold())
    if found is None:
        raise InvalidValue("Choose the phone type from the drop-down: Mobile, Home or Work.")
    return found


def normalise_access_level(text: str) -> AccessLevel:
    """The access level in its canonical spelling, whatever the case; else raises InvalidValue."""
    found = _ACCESS_LEVELS.get(clean(text).casefold())
    if found is None:
        raise InvalidValue("Choose the access level from the drop-down: Full, High or Read Only.")
    return found


def _is_name_char(c: str) -> bool:
    return c in _NAME_PUNCTUATION or unicodedata.category(c)[0] in "LM"


def _describe_chars(chars: list[str]) -> str:
    """Characters named so a person can find them, e.g. '@', '1' and U+00A0 (NO-BREAK SPACE)."""
    shown = []
    for c in chars[:5]:
        if c.isprintable() and not c.isspace():
            shown.append(f"'{c}'")
        else:
            shown.append(f"U+{ord(c):04X} ({unicodedata.name(c, 'unnamed character')})")
    more = f" and {len(chars) - 5} more" if len(chars) > 5 else ""
    if len(shown) == 1:
        return shown[0] + more
    return ", ".join(shown[:-1]) + (f", {shown[-1]}{more}" if more else f" and {shown[-1]}")
