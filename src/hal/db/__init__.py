"""Persistence: tables, engine and sessions, queries, and Alembic migrations."""
