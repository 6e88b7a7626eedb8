"""Revisions, one module per schema change, named `NNNN_slug.py` (see `otcdesk.app.migrations`)."""
