"""Per-slice monitoring: a slice's circuits and nodes seen through what monitoring stored."""
