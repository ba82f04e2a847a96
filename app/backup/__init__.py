"""Backups that restore: ``hotline backup DIR`` and ``hotline restore DIR`` (see service.py)."""
