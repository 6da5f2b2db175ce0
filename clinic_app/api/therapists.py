"""API v1: therapists endpoints (registered on the api blueprint through @endpoint)."""
