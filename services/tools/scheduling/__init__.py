"""Scheduling: the pure slot engine, loading its inputs from Postgres, and booking writes."""
