"""Signed post-call webhooks: payload, signature, delivery with retries and dead letters."""
