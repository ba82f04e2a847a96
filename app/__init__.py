"""12351 Hotline backend: recordings become transcribed, categorized, searchable, audited cases."""
