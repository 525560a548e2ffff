"""Alembic's migration scripts; installed, the package `app.migrations` (see app/cli.py)."""
