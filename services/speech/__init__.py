"""Speech service: self-hosted speech recognition (`/v1/listen`) and synthesis (`/v1/speak`),
speaking the Deepgram protocols media already uses (issue 15)."""
