"""Call recording on the media side: the line's two directions on the call's clock, stored in
chunks as the call goes (`timeline.py` is pure; `writer.py` ties it to a clock and the store)."""
