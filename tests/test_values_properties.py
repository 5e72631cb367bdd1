"""Properties of the value rules, alone and inside a sheet: generated valid values pass, and
values with '=' or ':', lost leading zeros or bad characters get the code they should."""

from __future__ import annotations

import unicodedata

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sheet_builders import COLUMN, errors_of, letter, sheet, valid_rows, with_cell

from grants.errors import Code
from grants.form import TITLES, AccessLevel, PhoneType
from grants.values import FORBIDDEN_CHARS
from validators import (
    InvalidValue,
    clean,
    normalise_account_id,
    normalise_email,
    normalise_name,
    normalise_phone,
    validate_sheet,
)

SHEET = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALUES = settings(max_examples=200, deadline=None)

LOCAL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-+._!#$%&'*/?^`{|}~"

# --- generators of valid values ----------------------------------------------------------------

label = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,18}[A-Za-z0-9])?", fullmatch=True)
emails = st.builds(
    lambda local, labels: f"{local}@{'.'.join(labels)}",
    st.text(alphabet=LOCAL_CHARS, min_size=1, max_size=64),
    st.lists(label, min_size=2, max_size=4),
)

nanp_digits = st.from_regex(r"[2-9][0-9]{2}[2-9][0-9]{2}[0-9]{4}", fullmatch=True)
PHONE_SPELLINGS = (
    "{a}-{e}-{l}", "({a}) {e}-{l}", "{a}.{e}.{l}", "{a}{e}{l}", "+1 {a} {e} {l}",
    "1-{a}-{e}-{l}", "+1{a}{e}{l}", "({a}){e}-{l}",
)


@st.composite
def phones(draw) -> tuple[str, str]:
    """(a spelling, its 10 digits)."""
    digits = draw(nanp_digits)
    spelling = draw(st.sampled_from(PHONE_SPELLINGS))
    return spelling.format(a=digits[:3], e=digits[3:6], l=digits[6:]), digits


letters = st.characters(categories=["L"])
name_chars = st.one_of(
    st.characters(categories=["L", "M"]), st.sampled_from([" ", "\u3000", "'", "-", "."])
)
# At most 30 characters: NFC can at most triple a string, and a name may have 100.
names = st.builds(lambda first, rest: first + rest, letters, st.text(name_chars, max_size=29))

account_ids = st.from_regex(r"[0-9]{10}", fullmatch=True)
drop_downs = {
    "Delegate Phone Type": [t.value for t in PhoneType],
    "Access Level": [a.value for a in AccessLevel],
}


@st.composite
def valid_cell(draw, title: str) -> str:
    """A valid text for the column `title`, in some accepted spelling."""
    if "Name" in title:
        return draw(names)
    if "Email" in title:
        return draw(emails)
    if "Phone Type" in title:
        value = draw(st.sampled_from(drop_downs[title]))
        return draw(st.sampled_from([value, value.upper(), value.lower(), f" {value} "]))
    if "Phone" in title:
        return draw(phones())[0]
    if title == "Account ID":
        return draw(account_ids)
    value = draw(st.sampled_from(drop_downs[title]))
    return draw(st.sampled_from([value, value.upper(), value.lower(), f" {value} "]))


def insert(draw, text: str, chars: st.SearchStrategy[str], *, inner: bool) -> str:
    """text with one drawn character inserted (strictly inside it when `inner`)."""
    at = draw(st.integers(1, len(text) - 1) if inner and len(text) > 1 else st.integers(0, len(text)))
    return text[:at] + draw(chars) + text[at:]


# --- values alone ------------------------------------------------------------------------------


@VALUES
@given(emails)
def test_a_generated_valid_email_is_accepted_in_lower_case(email):
    assert normalise_email(email) == email.lower()
    assert normalise_email(f"  {email.upper()} ") == email.lower()


@VALUES
@given(phones())
def test_a_generated_nanp_number_in_any_accepted_spelling_gives_its_ten_digits(phone):
    spelling, digits = phone
    assert normalise_phone(spelling) == digits


@VALUES
@given(st.from_regex(r"[01][0-9]{9}|[2-9][0-9]{2}[01][0-9]{6}", fullmatch=True))
def test_an_area_code_or_exchange_starting_with_0_or_1_is_refused(digits):
    try:
        normalise_phone(digits)
    except InvalidValue as refused:
        assert "cannot start with 0 or 1" in str(refused)
    else:
        raise AssertionError(f"{digits} accepted")


@VALUES
@given(names)
def test_a_generated_name_of_letters_marks_and_allowed_punctuation_is_accepted_as_nfc(name):
    assert normalise_name(name) == clean(name)
    assert normalise_name(unicodedata.normalize("NFD", name)) == clean(name)


@VALUES
@given(account_ids)
def test_a_generated_ten_digit_account_id_is_taken_as_it_is(account_id):
    assert normalise_account_id(account_id) == account_id


@VALUES
@given(st.from_regex(r"0[0-9]{9}", fullmatch=True))
def test_an_account_id_that_lost_its_leading_zeros_as_a_number_is_refused_never_padded(account_id):
    as_number = str(int(account_id))
    try:
        normalise_account_id(as_number, numeric=True)
    except InvalidValue as refused:
        assert "leading zero" in str(refused)
    else:
        raise AssertionError(f"{as_number} accepted")


@VALUES
@given(st.data(), st.sampled_from(TITLES))
def test_no_rule_accepts_a_value_holding_an_equals_sign_or_a_colon(data, title):
    from validators.schema import NORMALISERS

    text = insert(data.draw, data.draw(valid_cell(title)), st.sampled_from(FORBIDDEN_CHARS),
                  inner=False)
    try:
        NORMALISERS[title](text)
    except InvalidValue:
        pass
    else:
        raise AssertionError(f"{text!r} accepted in {title}")


# --- inside a sheet ----------------------------------------------------------------------------


@SHEET
@given(st.data())
def test_a_sheet_of_generated_valid_values_gives_the_form_with_those_values_normalised(data):
    cells = [data.draw(valid_cell(title)) for title in TITLES[:9]]
    assume(cells[2].lower() != cells[6].lower())  # else the delegate is the requester
    ids = data.draw(st.lists(account_ids, min_size=15, max_size=20, unique=True))
    level = data.draw(valid_cell("Access Level"))
    rows = {r: [*cells, account_id, level] for r, account_id in enumerate(ids, start=2)}
    form, errors = validate_sheet(sheet(rows))
    assert errors == []
    assert form.requester.first_name == clean(cells[0])
    assert form.requester.email == cells[2].lower()
    assert form.delegate.phone == normalise_phone(cells[7])
    assert form.phone_type.casefold() == clean(cells[8]).casefold()
    assert form.account_ids == tuple(ids)


@SHEET
@given(st.data(), st.sampled_from(TITLES), st.integers(2, 16))
def test_a_cell_with_an_equals_sign_or_a_colon_is_cell_forbidden_char_alone(data, title, at_row):
    text = insert(data.draw, data.draw(valid_cell(title)), st.sampled_from(FORBIDDEN_CHARS),
                  inner=False)
    errors = errors_of(sheet(with_cell(title, text, at_row)))
    assert [(e.code, e.row, e.column, e.value) for e in errors] == [
        (Code.CELL_FORBIDDEN_CHAR, at_row, title, text)]


@SHEET
@given(st.from_regex(r"0[0-9]{9}", fullmatch=True), st.integers(2, 16))
def test_a_numeric_account_id_without_its_leading_zeros_is_account_id_invalid(account_id, at_row):
    as_number = str(int(account_id))
    cells = sheet(with_cell("Account ID", as_number, at_row), numeric={(at_row, "J")})
    errors = errors_of(cells)
    assert [(e.code, e.row, e.value) for e in errors] == [
        (Code.ACCOUNT_ID_INVALID, at_row, as_number)]
    assert "leading zero" in errors[0].message


def _not(*excluded: str, categories: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    return st.characters(
        codec="utf-8", exclude_characters="".join(excluded) + FORBIDDEN_CHARS,
        exclude_categories=("Cs", *categories),
    )


# Characters that no valid value of the column can hold anywhere inside it.
BAD_CHARS = {
    "name": (_not(" \u3000'-.", categories=("L", "M")), Code.NAME_INVALID),
    "email": (_not(LOCAL_CHARS, "@"), Code.EMAIL_INVALID),
    "phone": (_not("0123456789 .-()+"), Code.PHONE_INVALID),
    "account": (_not("0123456789"), Code.ACCOUNT_ID_INVALID),
    "drop-down": (_not(), None),
}
KIND = {
    **dict.fromkeys(TITLES[0:2] + TITLES[4:6], "name"),
    TITLES[2]: "email", TITLES[6]: "email",
    TITLES[3]: "phone", TITLES[7]: "phone",
    TITLES[9]: "account",
    TITLES[8]: "drop-down", TITLES[10]: "drop-down",
}
DROP_DOWN_CODE = {TITLES[8]: Code.PHONE_TYPE_INVALID, TITLES[10]: Code.ACCESS_LEVEL_INVALID}


@SHEET
@given(st.data(), st.sampled_from(TITLES), st.integers(2, 16))
def test_a_character_a_column_cannot_hold_gets_the_columns_own_code(data, title, at_row):
    chars, code = BAD_CHARS[KIND[title]]
    text = insert(data.draw, data.draw(valid_cell(title).map(clean)), chars, inner=True)
    errors = errors_of(sheet(with_cell(title, text, at_row)))
    assert [(e.code, e.row, e.column, e.value) for e in errors] == [
        (code or DROP_DOWN_CODE[title], at_row, title, text)]


def test_the_builders_valid_sheet_is_valid():
    """The sheet the properties edit has no error of its own."""
    assert validate_sheet(sheet(valid_rows()))[1] == []
    assert COLUMN["Account ID"] == 9 and letter("Account ID") == "J"
