"""Maintenance scripts: builders of the project's data files, run by hand from the repository root."""
