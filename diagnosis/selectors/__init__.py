"""Selectors: every read of the database that is more than a primary-key lookup lives in this package."""
