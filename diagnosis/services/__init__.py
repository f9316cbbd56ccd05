"""Services: every write goes through here, with its audit event in the same transaction."""
