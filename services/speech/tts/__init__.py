"""Self-hosted speech synthesis speaking the Deepgram Aura `/v1/speak` protocol (Piper)."""
