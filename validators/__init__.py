"""Pure validation of the form sheet: the pandera schema, value rules and form rules. No IO."""

from validators.form import validate_sheet
from validators.values import (
    InvalidValue,
    clean,
    normalise_access_level,
    normalise_account_id,
    normalise_email,
    normalise_name,
    normalise_phone,
    normalise_phone_type,
)

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
