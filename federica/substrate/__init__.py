"""The physical facility: PoPs, devices, ports, links, compute hosts (V-nodes)."""
