"""Call recordings: the µ-law stereo WAV format, chunk assembly and the recordings store."""
