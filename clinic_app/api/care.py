"""API v1: care endpoints (registered on the api blueprint through @endpoint)."""
