"""NETCONF drivers and the session layer they share."""
