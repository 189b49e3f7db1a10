"""Organization data exports: background-built ZIP archives, stored chunked in PostgreSQL."""
