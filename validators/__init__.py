"""Pure validation of the form sheet: the pandera schema and the workbook, cell and form rules. No IO.

The value rules themselves live in `grants.values` (the store normalises the directory with them
too); they are re-exported here for the validators' callers.
"""

from grants.values import (
    InvalidValue,
    clean,
    normalise_access_level,
    normalise_account_id,
    normalise_email,
    normalise_name,
    normalise_phone,
    normalise_phone_type,
)
from validators.form import validate_sheet

__all__ = [
    "InvalidValue",
    "clean",
    "normalise_access_level",
    "normalise_account_id",
    "normalise_email",
    "normalise_name",
    "normalise_phone",
    "normalise_phone_type",
    "validate_sheet",
]
