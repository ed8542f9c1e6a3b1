"""The seed guides' code, kept as written (only the URL and the logger import changed)."""
