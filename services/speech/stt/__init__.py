"""Self-hosted speech recognition: a Deepgram-live-compatible `/v1/listen` (Silero VAD +
faster-whisper). Nothing here is imported by the other services."""
