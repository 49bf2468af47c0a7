"""What keeps a call going when Redis blips or its replica drains: the best-effort phrase cache
and the caller's pause a drain's handover waits for."""
