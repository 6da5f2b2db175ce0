"""Use cases. Each takes the SQLAlchemy session and ``now`` and raises DomainError."""
