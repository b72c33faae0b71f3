"""The GENI Aggregate Manager API v3 with RSpec v3, so that GENI's own tools (omni, jFed,
geni-lib) can use the facility: credentials (credentials.py), RSpecs (rspec.py), the
mapping of GENI authorities to local projects (trust.py) and the calls (aggregate.py).
The XML-RPC endpoint over mutual TLS is web/geni; nothing here speaks HTTP."""
