"""API v1: catalog endpoints (registered on the api blueprint through @endpoint)."""
