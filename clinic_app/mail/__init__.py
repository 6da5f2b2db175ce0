"""Email: rendering, the outbox (the one way mail leaves) and delivery backends."""
