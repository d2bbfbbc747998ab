"""Adapters that build domain objects from configuration (status models, calendars)."""
