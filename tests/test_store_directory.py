"""`directory load`: one transaction, upsert by key, every rule of directory.md, file/line/field on refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_builders import BACKENDS, DIRECTORY, dump, scratch_store

from loaders.store import DirectoryLoadError, Store

FIXTURE_COUNTS = {"customers": 3, "people": 7, "accounts": 42, "roles": 4, "submitters": 2, "grants": 6}


def folder_with(tmp_path: Path, edits: dict[str, list[tuple[int | None, str]]], *, only: bool = False) -> Path:
    """A copy of the fixture directory (or only the edited files) with lines replaced or appended.

    `edits`: file -> [(line number to replace, or None to append, text)].
    """
    folder = tmp_path / "directory"
    folder.mkdir()
    for source in DIRECTORY.glob("*.csv"):
        if only and source.name not in edits:
            continue
        lines = source.read_text(encoding="utf-8").splitlines()
        for line, text in edits.get(source.name, []):
            if line is None:
                lines.append(text)
            else:
                lines[line - 1] = text
        (folder / source.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def sqlite_store(sqlite_url):
    s = Store.connect(sqlite_url)
    yield s
    s.dispose()


@pytest.fixture
def store(db_url):
    s = Store.connect(db_url)
    yield s
    s.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def empty_store(request, tmp_path_factory):
    """One empty database per backend for loads that must be refused (and so leave it empty)."""
    with scratch_store(request.param, request, tmp_path_factory.mktemp("shared"), directory=None) as s:
        yield s


def refused(store, folder) -> tuple:
    with pytest.raises(DirectoryLoadError) as caught:
        store.load_directory(folder)
    e = caught.value
    assert str(e).startswith(f"{e.file}")
    return e.file, e.line, e.field


# Row-by-row checks: the same on every database.
BAD_VALUES = [
    pytest.param(
        {"customers.csv": [(1, "customer_id,name,customer_type,region")]},
        ("customers.csv", 1, "region"),
        id="extra-column",
    ),
    pytest.param(
        {"people.csv": [(1, "person_id,first_name,last_name,email")]}, ("people.csv", 1, "phone"), id="missing-column"
    ),
    pytest.param(
        {
            "roles.csv": [
                (1, "role,person_id,customer_id"),
                (2, "primary_account_holder,P-AIKO,C-RES"),
                (3, "authorized_user,P-LAN,C-BIZ"),
                (4, "direct_employee,P-MINH,C-BIZ"),
                (5, "Authorized_User , P-OLGA,C-BIZ2"),
            ]
        },
        None,
        id="columns-in-any-order-are-fine",
    ),
    pytest.param(
        {"customers.csv": [(3, "C-BIZ,Nguyen Foods LLC,corporate")]},
        ("customers.csv", 3, "customer_type"),
        id="customer-type",
    ),
    pytest.param(
        {"accounts.csv": [(None, "123456789,C-BIZ,active")]},
        ("accounts.csv", 44, "account_id"),
        id="account-id-9-digits",
    ),
    pytest.param(
        {"accounts.csv": [(None, "10000000AB,C-BIZ,active")]},
        ("accounts.csv", 44, "account_id"),
        id="account-id-letters",
    ),
    pytest.param({"accounts.csv": [(5, "1000000004,C-BIZ,open")]}, ("accounts.csv", 5, "status"), id="account-status"),
    pytest.param(
        {"people.csv": [(2, "P-LAN,Lan,Nguyễn,lan(at)nguyenfoods.example,415-555-0101")]},
        ("people.csv", 2, "email"),
        id="email-invalid",
    ),
    pytest.param(
        {"people.csv": [(None, "P-LAN2,Lan,Other,LAN@NguyenFoods.EXAMPLE,415-555-0199")]},
        ("people.csv", 9, "email"),
        id="email-duplicate-case-insensitive",
    ),
    pytest.param(
        {"people.csv": [(3, "P-MINH,Minh,Trần,minh@nguyenfoods.example,555-01")]},
        ("people.csv", 3, "phone"),
        id="phone",
    ),
    pytest.param(
        {"people.csv": [(3, "P-MINH,M1nh,Trần,minh@nguyenfoods.example,415-555-0102")]},
        ("people.csv", 3, "first_name"),
        id="name",
    ),
    pytest.param(
        {"people.csv": [(3, "P-MINH,,Trần,minh@nguyenfoods.example,415-555-0102")]},
        ("people.csv", 3, "first_name"),
        id="blank",
    ),
    pytest.param({"roles.csv": [(3, "C-BIZ,P-LAN,owner")]}, ("roles.csv", 3, "role"), id="role"),
    pytest.param(
        {"grants.csv": [(2, "1000000001,P-ALEX,Admin,active")]}, ("grants.csv", 2, "access_level"), id="access-level"
    ),
    pytest.param(
        {"grants.csv": [(2, "1000000001,P-ALEX,High,pending")]}, ("grants.csv", 2, "status"), id="grant-status"
    ),
    pytest.param(
        {"submitters.csv": [(3, "S2,Rita Gone,rita@utility.example,AAAA,suspended")]},
        ("submitters.csv", 3, "status"),
        id="submitter-status",
    ),
    pytest.param(
        {"submitters.csv": [(3, "S2,Rita Gone,rita@utility.example,not a key!,active")]},
        ("submitters.csv", 3, "public_key"),
        id="public-key",
    ),
    pytest.param(
        {"customers.csv": [(None, "C-BIZ,Again,business")]}, ("customers.csv", 5, "customer_id"), id="duplicate-key"
    ),
    pytest.param(
        {"roles.csv": [(None, "C-BIZ,P-LAN,direct_employee")]},
        ("roles.csv", 6, "customer_id,person_id"),
        id="one-role-per-person-and-customer",
    ),
    pytest.param({"people.csv": [(None, "P-X,Only,Three")]}, ("people.csv", 9, None), id="field-count"),
    pytest.param({"grant.csv": [(None, "x")]}, ("grant.csv", None, None), id="unknown-file"),
]


@pytest.mark.parametrize(("edits", "expected"), BAD_VALUES)
def test_a_bad_value_refuses_the_whole_load_naming_file_line_and_field(sqlite_store, tmp_path, edits, expected):
    folder = folder_with(tmp_path, edits)
    if "grant.csv" in edits:
        (folder / "grant.csv").write_text("account_id\n", encoding="utf-8")
    if expected is None:
        assert sqlite_store.load_directory(folder) == FIXTURE_COUNTS
        return
    assert refused(sqlite_store, folder) == expected
    assert all(rows == [] for rows in dump(sqlite_store).values())


# Rules on the merged result and foreign keys: on both databases.
BROKEN_RULES = [
    pytest.param(
        {"accounts.csv": [(None, "1000000050,C-NOPE,active")]},
        ("accounts.csv", 44, "customer_id"),
        id="account-of-unknown-customer",
    ),
    pytest.param(
        {"roles.csv": [(None, "C-BIZ,P-NOPE,direct_employee")]},
        ("roles.csv", 6, "person_id"),
        id="role-of-unknown-person",
    ),
    pytest.param(
        {"grants.csv": [(None, "1000000777,P-ALEX,High,active")]},
        ("grants.csv", 8, "account_id"),
        id="grant-on-unknown-account",
    ),
    pytest.param(
        {"grants.csv": [(None, "1000000007,P-NOPE,High,active")]},
        ("grants.csv", 8, "person_id"),
        id="grant-to-unknown-person",
    ),
    pytest.param(
        {"roles.csv": [(None, "C-RES,P-ALEX,primary_account_holder")]},
        ("roles.csv", 6, "role"),
        id="residential-two-primary-holders",
    ),
    pytest.param(
        {"customers.csv": [(None, "C-RES2,New home,residential")]},
        ("customers.csv", 5, "customer_type"),
        id="residential-without-primary-holder",
    ),
    pytest.param(
        {"roles.csv": [(None, "C-RES,P-LAN,authorized_user")]},
        ("roles.csv", 6, "role"),
        id="residential-authorized-user",
    ),
    pytest.param(
        {"roles.csv": [(None, "C-BIZ,P-ALEX,primary_account_holder")]},
        ("roles.csv", 6, "role"),
        id="business-primary-holder",
    ),
    pytest.param(
        {"grants.csv": [(None, "1000000005,P-ALEX,Full,active")]},
        ("grants.csv", 8, "access_level"),
        id="third-party-full-on-business",
    ),
    pytest.param(
        {"grants.csv": [(None, "1000000006,P-NIA,full,invited")]},
        ("grants.csv", 8, "access_level"),
        id="third-party-full-invitation",
    ),
]


@pytest.mark.parametrize(("edits", "expected"), BROKEN_RULES)
def test_a_broken_rule_refuses_the_whole_load_naming_file_line_and_field(empty_store, tmp_path, edits, expected):
    assert refused(empty_store, folder_with(tmp_path, edits)) == expected
    assert all(rows == [] for rows in dump(empty_store).values())


def test_full_for_an_employee_and_on_a_home_is_fine(store, tmp_path):
    edits = {"grants.csv": [(None, "1000000005,P-MINH,Full,active"), (None, "0000000102,P-ALEX,Full,active")]}
    assert store.load_directory(folder_with(tmp_path, edits))["grants"] == 8


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        pytest.param(
            {"customers.csv": [(1, "customer_id,name,customer_type"), (2, "C-RES,Tanaka,business")]},
            ("customers.csv", 2, "customer_type"),
            id="home-turned-business-keeps-its-primary-holder",
        ),
        pytest.param(
            {"accounts.csv": [(1, "account_id,customer_id,status"), (2, "0000000101,C-BIZ,active")]},
            ("accounts.csv", 2, "customer_id"),
            id="account-moved-where-its-full-holder-is-a-third-party",
        ),
        pytest.param(
            {
                "people.csv": [
                    (1, "person_id,first_name,last_name,email,phone"),
                    (2, "P-NEW,New,Person,Alex@Consult.example,415-555-0188"),
                ]
            },
            ("people.csv", 2, "email"),
            id="email-of-someone-else-in-the-database",
        ),
    ],
)
def test_the_rules_hold_on_the_merged_directory_when_a_later_load_brings_one_file(store, tmp_path, edits, expected):
    first = folder_with(tmp_path, {"grants.csv": [(6, "0000000101,P-ALEX,Full,active")]})
    store.load_directory(first)
    before = dump(store)
    later = tmp_path / "later"
    later.mkdir()
    for name, lines in edits.items():
        (later / name).write_text("\n".join(text for _, text in lines) + "\n", encoding="utf-8")
    assert refused(store, later) == expected
    assert dump(store) == before


def test_the_directory_loads_with_values_normalised(store):
    assert store.load_directory(DIRECTORY) == FIXTURE_COUNTS
    people = {row[0]: row for row in dump(store, "people")["people"]}
    assert people["P-LAN"][1:5] == ("Lan", "Nguyễn", "lan@nguyenfoods.example", "4155550101")
    assert people["P-AIKO"][3:5] == ("aiko@example.jp", "4155550103")
    assert [s.submitter_id for s in store.submitters()] == ["S1", "S2"]
    assert {r["account_id"] for r in store.grants_rows()} >= {"0000000101", "1000000001"}  # leading zeros kept


def test_loading_the_same_folder_twice_changes_nothing_the_second_time(store):
    store.load_directory(DIRECTORY)
    before = dump(store)
    assert store.load_directory(DIRECTORY) == FIXTURE_COUNTS
    assert dump(store) == before  # updated_at included: no row was even rewritten


def test_files_absent_from_the_folder_leave_their_tables_as_they_are(store, tmp_path):
    store.load_directory(DIRECTORY)
    before = dump(store)
    only_grants = tmp_path / "grants_only"
    only_grants.mkdir()
    (only_grants / "grants.csv").write_text(
        "status,access_level,person_id,account_id\nactive,Read Only,P-NIA,1000000002\n", encoding="utf-8"
    )
    assert store.load_directory(only_grants) == {"grants": 1}
    after = dump(store)
    assert {t: rows for t, rows in after.items() if t != "grants"} == {
        t: rows for t, rows in before.items() if t != "grants"
    }
    nia = [g for g in store.grants_rows() if g["person_id"] == "P-NIA"]
    assert [(g["access_level"], g["status"]) for g in nia] == [("Read Only", "active")]


def test_a_load_is_refused_whole_even_when_the_bad_row_is_in_the_last_file(store, tmp_path):
    store.load_directory(DIRECTORY)
    before = dump(store)
    folder = folder_with(
        tmp_path,
        {
            "customers.csv": [(None, "C-NEW,New Biz,business")],
            "people.csv": [(2, "P-LAN,Lan,Nguyen-Smith,lan@nguyenfoods.example,415-555-0101")],
            "grants.csv": [(None, "1000000009,P-ALEX,Full,active")],
        },
    )
    assert refused(store, folder) == ("grants.csv", 8, "access_level")
    assert dump(store) == before


def test_line_numbers_count_physical_lines_of_quoted_multi_line_fields(sqlite_store, tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    key = "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE="
    pem = f'"-----BEGIN PUBLIC KEY-----\n{key}\n-----END PUBLIC KEY-----"'
    (folder / "submitters.csv").write_text(
        f"submitter_id,name,email,public_key,status\nS1,Sam,sam@u.example,{pem},active\n\n"
        f"S2,Rita,rita@u.example,{pem},gone\n",
        encoding="utf-8",
    )
    assert refused(sqlite_store, folder) == ("submitters.csv", 6, "status")


def test_a_file_that_is_not_utf8_is_refused_with_its_line(sqlite_store, tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "customers.csv").write_bytes(b"customer_id,name,customer_type\nC1,Caf\xe9,business\n")
    assert refused(sqlite_store, folder) == ("customers.csv", 2, None)


def test_a_folder_with_no_directory_file_is_refused(sqlite_store, tmp_path):
    with pytest.raises(DirectoryLoadError, match="none of the directory files"):
        sqlite_store.load_directory(tmp_path)
