"""Real test infrastructure (loopback sshd, a PostgreSQL server, synthetic histories); never used by the product."""
