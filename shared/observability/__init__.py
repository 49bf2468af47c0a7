"""Metrics, health, trace plumbing shared by every service."""
