"""Federation: this facility's identity, the peers it trusts and what each agreement allows.

`identity` makes and reads the facility's CA and certificates; `agreement` is the pure
logic of forms and operations; `peers` keeps the registry; `advertisement` says what a
peer may see; `client` (an adapter) calls a peer over mutual TLS.
"""
