"""Storage: Redis key names, the embedded Redis server, queue names."""
