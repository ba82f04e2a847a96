"""Offline Mandarin transcription of calls and sessions (no FastAPI, no database: typed dataclasses only)."""
