"""Database models (SQLAlchemy 2) and async engine helpers."""
