"""People: contact addresses and keys, contacts' stored state, the staff roster, the audit log."""
