"""The pure core: access levels, the form, the directory snapshot, rules, plans and errors.

Standard library only; no IO. Everything else in the project imports from here, never the reverse.
"""
