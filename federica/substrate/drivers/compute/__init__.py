"""Compute drivers: where a slice's virtual nodes run (a V-node's hypervisor)."""
