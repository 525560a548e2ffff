"""One Alembic revision per schema change, in order."""
