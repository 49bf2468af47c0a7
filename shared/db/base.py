"""Declarative base shared by every table."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import DeclarativeBase


def new_id() -> str:
    """A random 32-hex primary key."""
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    """Declarative base of every FrontDesk table."""
