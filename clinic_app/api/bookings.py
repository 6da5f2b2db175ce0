"""API v1: bookings endpoints (registered on the api blueprint through @endpoint)."""
