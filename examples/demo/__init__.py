"""The helpdesk triage demo; see ``workflow.yaml`` for how to run it."""
