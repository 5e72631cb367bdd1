"""Pure validation of the form sheet: the pandera schema, value rules and form rules. No IO."""
