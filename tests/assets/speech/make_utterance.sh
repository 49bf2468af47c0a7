#!/usr/bin/env bash
# Makes book_table.ulaw: a spoken receptionist request as raw 8 kHz mono µ-law (Twilio's audio),
# for tests/integration/test_speech_stt.py. Needs espeak-ng and sox (Debian: apt-get install
# espeak-ng sox). The committed file is the output; rerun only to change the sentence.
set -euo pipefail
cd "$(dirname "$0")"
TEXT="Hello, I would like to book a table for four people on Friday at seven."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
espeak-ng -v en-us -s 150 -w "$tmp/voice.wav" "$TEXT"
sox "$tmp/voice.wav" -r 8000 -c 1 -e mu-law -t raw book_table.ulaw
printf '%s\n' "$TEXT" > book_table.txt
