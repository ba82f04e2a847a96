"""Speech-to-text engines behind one interface (faster-whisper by default)."""
