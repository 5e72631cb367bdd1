"""The value rules of one cell (grants.values): what passes, its canonical form, what is refused."""

from __future__ import annotations

import unicodedata

import pytest

from grants.form import AccessLevel, PhoneType
from validators import (
    InvalidValue,
    clean,
    normalise_access_level,
    normalise_account_id,
    normalise_email,
    normalise_name,
    normalise_phone,
    normalise_phone_type,
)

# --- phone -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["415-555-0100", "(415) 555-0100", "415.555.0100", "4155550100", "+1 415 555 0100"],
)
def test_the_five_phone_spellings_of_the_spec_are_accepted_as_the_same_ten_digits(text):
    assert normalise_phone(text) == "4155550100"


@pytest.mark.parametrize(
    "text",
    ["1-415-555-0100", "+14155550100", "14155550100", "(415)555-0100", "+1 (415) 555-0100", " 415 555 0100 "],
)
def test_a_leading_country_code_and_other_common_spellings_are_accepted(text):
    assert normalise_phone(text) == "4155550100"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("555-0100", "not a phone number"),
        ("415-555-010", "not a phone number"),
        ("415-555-01000", "not a phone number"),
        ("041-555-0100", "area code cannot start with 0 or 1"),
        ("141-555-0100", "area code cannot start with 0 or 1"),
        ("415-155-0100", "after the area code cannot start with 0 or 1"),
        ("415-055-0100", "after the area code cannot start with 0 or 1"),
        ("415-555-0100 x123", "extension"),
        ("415-555-0100 ext. 12", "extension"),
        ("+44 20 7946 0958", "not a phone number"),
        ("+2 415 555 0100", "not a phone number"),
        ("４１５-５５５-０１００", "not a phone number"),
        ("", "not a phone number"),
    ],
)
def test_a_phone_that_is_no_north_american_number_is_refused_saying_why(text, says):
    with pytest.raises(InvalidValue, match=says):
        normalise_phone(text)


# --- email -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("jane.doe@example.com", "jane.doe@example.com"),
        ("Jane.Doe@Example.COM", "jane.doe@example.com"),
        (" o'brien+bills@mail.example.co.uk ", "o'brien+bills@mail.example.co.uk"),
        ("a!#$%&'*/?^`{|}~-_.+z@x-y.example.com", "a!#$%&'*/?^`{|}~-_.+z@x-y.example.com"),
        ("taro..yamada.@docomo.ne.jp", "taro..yamada.@docomo.ne.jp"),
        ("user@xn--wgv71a119e.jp", "user@xn--wgv71a119e.jp"),
        ("x@1.2", "x@1.2"),
    ],
)
def test_an_email_under_the_spec_rule_is_accepted_in_lower_case(text, canonical):
    assert normalise_email(text) == canonical


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("jane.doe.example.com", "exactly one @"),
        ("jane@@example.com", "exactly one @"),
        ("a@b@example.com", "exactly one @"),
        ("@example.com", "before the @ is missing"),
        ("jane doe@example.com", "Remove U\\+0020"),
        ("jané@example.com", "Remove 'é'"),
        ('"jane"@example.com', "Remove '\"'"),
        ("a=b@example.com", "Remove '='"),
        ("jane@", "after the @"),
        ("jane@localhost", "after the @"),
        ("jane@-example.com", "after the @"),
        ("jane@example-.com", "after the @"),
        ("jane@example..com", "after the @"),
        ("jane@example.com.", "after the @"),
        ("jane@exa_mple.com", "after the @"),
        ("jane@日本.jp", "after the @"),
        ("j" * 243 + "@example.com", "at most 254"),
    ],
)
def test_an_email_breaking_the_spec_rule_is_refused_saying_why(text, says):
    with pytest.raises(InvalidValue, match=says):
        normalise_email(text)


def test_an_email_of_exactly_254_characters_is_accepted():
    email = "j" * 242 + "@example.com"
    assert len(email) == 254
    assert normalise_email(email) == email


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Jane",
        "O'Brien",
        "Mary-Jane",
        "J. R.",
        "山田 太郎",
        "山田\u3000太郎",
        "やまだ",
        "ヤマダ",
        "Nguyễn Thị Minh Khai",
        "Đặng",
        "김민준",
        "Zoë",
        "Ólafsdóttir",
        "L" * 100,
    ],
)
def test_a_name_in_any_script_with_spaces_apostrophes_hyphens_and_dots_is_accepted(text):
    assert normalise_name(text) == text


def test_a_name_typed_in_decomposed_form_is_stored_nfc():
    nfd = unicodedata.normalize("NFD", "Nguyễn Thị Minh Khai")
    assert nfd != "Nguyễn Thị Minh Khai"
    assert normalise_name(f" {nfd} ") == unicodedata.normalize("NFC", nfd) == "Nguyễn Thị Minh Khai"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("R2D2", "Remove '2'"),
        ("Jane@Doe", "Remove '@'"),
        ("Jane_Doe", "Remove '_'"),
        ("Jane\u00a0Doe", "U\\+00A0 \\(NO-BREAK SPACE\\)"),
        ("Jane\tDoe", "U\\+0009"),
        ("ジョン・スミス", "Remove '・'"),
        ("Jane’s", "Remove '’'"),
        ("'", "at least one letter"),
        ("-.", "at least one letter"),
        ("L" * 101, "at most 100 characters long; this one has 101"),
    ],
)
def test_a_name_with_characters_a_name_cannot_hold_or_too_long_is_refused_naming_them(text, says):
    with pytest.raises(InvalidValue, match=says):
        normalise_name(text)


# --- account id --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["0123456789", " 0000000001 ", "9999999999"])
def test_an_account_id_of_ten_digits_is_taken_as_it_is(text):
    assert normalise_account_id(text) == text.strip()


def test_a_numeric_cell_of_exactly_ten_digits_is_accepted():
    assert normalise_account_id("1234567890", numeric=True) == "1234567890"


@pytest.mark.parametrize(("text", "lost"), [("123456789", "leading zero:"), ("12345", "5 leading zeros")])
def test_a_numeric_account_id_with_fewer_digits_is_refused_as_lost_leading_zeros(text, lost):
    with pytest.raises(InvalidValue) as refused:
        normalise_account_id(text, numeric=True)
    message = str(refused.value)
    assert "dropped its " + lost in message
    assert "Format the Account ID column as Text" in message
    assert "0" + text not in message  # never padded, not even in the advice


@pytest.mark.parametrize(
    ("text", "numeric", "says"),
    [
        ("123456789", False, "exactly 10 digits; this one has 9"),
        ("01234567890", False, "exactly 10 digits; this one has 11"),
        ("12345678901", True, "exactly 10 digits; this one has 11"),
        ("0123-456-789", False, "nothing else"),
        ("0123 456789", False, "nothing else"),
        ("A123456789", False, "nothing else"),
        ("1234567890.5", True, "nothing else"),
        ("０１２３４５６７８９", False, "nothing else"),
        ("", False, "nothing else"),
    ],
)
def test_an_account_id_that_is_not_ten_digits_is_refused(text, numeric, says):
    with pytest.raises(InvalidValue, match=says):
        normalise_account_id(text, numeric=numeric)


# --- drop-downs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("Full", AccessLevel.FULL),
        (" FULL ", AccessLevel.FULL),
        ("high", AccessLevel.HIGH),
        ("read only", AccessLevel.READ_ONLY),
        ("READ ONLY", AccessLevel.READ_ONLY),
    ],
)
def test_an_access_level_matches_ignoring_case_and_is_stored_in_its_canonical_spelling(text, level):
    assert normalise_access_level(text) is level


@pytest.mark.parametrize(
    ("text", "phone_type"),
    [("Mobile", PhoneType.MOBILE), (" mobile ", PhoneType.MOBILE), ("HOME", PhoneType.HOME), ("work", PhoneType.WORK)],
)
def test_a_phone_type_matches_ignoring_case_and_is_stored_in_its_canonical_spelling(text, phone_type):
    assert normalise_phone_type(text) is phone_type


@pytest.mark.parametrize("text", ["Admin", "ReadOnly", "Read  Only", "Read-Only", "Fu ll", ""])
def test_an_access_level_not_on_the_drop_down_is_refused(text):
    with pytest.raises(InvalidValue, match="Full, High or Read Only"):
        normalise_access_level(text)


@pytest.mark.parametrize("text", ["Cell", "Landline", "Mobile phone", ""])
def test_a_phone_type_not_on_the_drop_down_is_refused(text):
    with pytest.raises(InvalidValue, match="Mobile, Home or Work"):
        normalise_phone_type(text)


def test_a_cell_is_read_stripped_and_nfc_normalised():
    assert clean("  e\u0301 \n") == "\u00e9"
