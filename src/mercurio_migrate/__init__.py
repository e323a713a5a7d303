"""mercurio-migrate: SQL-first PostgreSQL migrations in Mercurio's format."""

__version__ = "0.1.0"
