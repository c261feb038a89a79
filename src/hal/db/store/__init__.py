"""Set-based persistence for the widget calls: SQLAlchemy Core statements, no unit of work.

Each function is one statement (or a few, named by its docstring) on the request's `Tx`;
the team side keeps the ORM (`hal.db.models`).
"""
