"""The imperative shell: Prefect flows, settings and the command line."""
