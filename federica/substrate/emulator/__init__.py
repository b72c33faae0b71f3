"""The emulated facility: every device a network namespace with a real NETCONF server
(netconfd behind OpenSSH) and a real SNMP agent (snmpd); every link real veth pairs.

Not a mock: the controller talks to it exactly as to real devices. See docs/emulator.md.
"""
