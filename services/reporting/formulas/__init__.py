"""Versioned scoring formulas of the Decision 766 index (JSON data read by services.reporting.index766)."""
