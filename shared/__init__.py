"""Definitions shared by the tthc-pulse services: event models, topics, unit tree, settings."""
