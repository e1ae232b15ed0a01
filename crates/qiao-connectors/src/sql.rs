//! SQL tables (PostgreSQL, MySQL/MariaDB, SQLite) as source and sink.
