"""Monitoring: SNMP polling, samples, alarms, GMOC datastore, Prometheus, emergency stop."""
