"""Speech building blocks shared by media and the speech service (Silero VAD)."""
