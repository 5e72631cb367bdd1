"""Error codes of the contract (spec: delegate-form.md, "Error codes") and the error value."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class Code(StrEnum):
    """Every error code a form, a file or a directory check can end with."""

    # file level: the file could not be opened as a form (quarantined, operations told)
    DECRYPT_FAILED = "DECRYPT_FAILED"
    NOT_ENCRYPTED = "NOT_ENCRYPTED"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    NOT_XLSX = "NOT_XLSX"
    SIGNATURE_MISSING = "SIGNATURE_MISSING"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    # workbook level
    SHEET_MISSING = "SHEET_MISSING"
    SHEET_EXTRA = "SHEET_EXTRA"
    HEADER_MISMATCH = "HEADER_MISMATCH"
    DATA_OUTSIDE_FORM = "DATA_OUTSIDE_FORM"
    NO_DATA = "NO_DATA"
    # cell level
    CELL_BLANK = "CELL_BLANK"
    CELL_FORBIDDEN_CHAR = "CELL_FORBIDDEN_CHAR"
    CELL_FORMULA = "CELL_FORMULA"
    NAME_INVALID = "NAME_INVALID"
    EMAIL_INVALID = "EMAIL_INVALID"
    PHONE_INVALID = "PHONE_INVALID"
    PHONE_TYPE_INVALID = "PHONE_TYPE_INVALID"
    ACCESS_LEVEL_INVALID = "ACCESS_LEVEL_INVALID"
    ACCOUNT_ID_INVALID = "ACCOUNT_ID_INVALID"
    # form level
    ACCOUNT_DUPLICATE = "ACCOUNT_DUPLICATE"
    REQUESTER_NOT_UNIQUE = "REQUESTER_NOT_UNIQUE"
    DELEGATE_NOT_UNIQUE = "DELEGATE_NOT_UNIQUE"
    DELEGATE_IS_REQUESTER = "DELEGATE_IS_REQUESTER"
    TOO_FEW_ACCOUNTS = "TOO_FEW_ACCOUNTS"
    TOO_MANY_ACCOUNTS = "TOO_MANY_ACCOUNTS"
    # directory level
    REQUESTER_UNKNOWN = "REQUESTER_UNKNOWN"
    REQUESTER_MISMATCH = "REQUESTER_MISMATCH"
    ACCOUNT_UNKNOWN = "ACCOUNT_UNKNOWN"
    ACCOUNT_CLOSED = "ACCOUNT_CLOSED"
    REQUESTER_NOT_AUTHORIZED = "REQUESTER_NOT_AUTHORIZED"
    DELEGATE_NOT_INVITED = "DELEGATE_NOT_INVITED"
    DELEGATE_MISMATCH = "DELEGATE_MISMATCH"
    FULL_ACCESS_THIRD_PARTY = "FULL_ACCESS_THIRD_PARTY"

    @property
    def level(self) -> str:
        """'file', 'workbook', 'cell', 'form' or 'directory'."""
        return _LEVELS[self]


_LEVELS = {
    **dict.fromkeys(list(Code)[:6], "file"),
    **dict.fromkeys(list(Code)[6:11], "workbook"),
    **dict.fromkeys(list(Code)[11:20], "cell"),
    **dict.fromkeys(list(Code)[20:26], "form"),
    **dict.fromkeys(list(Code)[26:], "directory"),
}

# A requester who fails these is not known to be who the form says: they are told nothing.
REQUESTER_IDENTITY_CODES = frozenset({Code.REQUESTER_UNKNOWN, Code.REQUESTER_MISMATCH})


@dataclass(frozen=True, slots=True)
class FormError:
    """One thing wrong with a form: where (row, column), what was there (value), what to do (message).

    `row` is the spreadsheet's row number (titles are row 1), None for errors of no single row.
    `column` is the title for columns A-K, a column letter for data outside the form, else None.
    """

    code: Code
    message: str
    row: int | None = None
    column: str | None = None
    value: str | None = None

    def to_dict(self) -> dict:
        """The report's shape: code, row, column, value, message."""
        d = asdict(self)
        d["code"] = str(self.code)
        return {k: d[k] for k in ("code", "row", "column", "value", "message")}


class FileRejected(Exception):
    """The file cannot be opened as a form at all (a file-level code): it goes to quarantine.

    The message must never contain plaintext workbook content or key material.
    """

    def __init__(self, code: Code, message: str):
        super().__init__(f"{code}: {message}")
        self.error = FormError(code, message)

    @property
    def code(self) -> Code:
        return self.error.code
