"""Programs that run on the providers' side (the desktop client)."""
