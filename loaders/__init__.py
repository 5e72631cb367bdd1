"""All IO that is not orchestration: workbooks, envelopes, inbox, store, mail. No Prefect."""
