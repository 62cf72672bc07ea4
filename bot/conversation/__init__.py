"""The conversation: the pure engine, its flows (alerts, workshops) and the data of one turn."""
