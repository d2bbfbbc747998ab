"""Storage adapter: SQLAlchemy Core tables, connections, repositories and Alembic migrations."""
