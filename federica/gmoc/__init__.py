"""The GENI operational monitoring ("GMOC-style") datastore: the facility's aggregate,
nodes, interfaces, per-VLAN interfaces, links, slivers, slices, users and authority as the
published GENI JSON schemas describe them (vendored in schemas/), and the poller's stored
rates as their time series. Served by federica/web/gmoc; see docs/gmoc.md."""
