"""Broadcasts: the store, composing, the approval desk, the fan-out and its batches, per-recipient outcomes."""
