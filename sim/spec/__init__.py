"""What is generated from the specification: the MQTT interface schema (JSON Schema and
AsyncAPI, :mod:`.schema`), the node protocol's JSON Schema (:mod:`.node_protocol`) and the
requirement traceability matrix (:mod:`.traceability`).

Each is derived from the code it describes (the message structs, the wire structs, the tests'
``req`` marks) rather than written by hand, and the published copies under ``docs/schema/`` are
kept current by tests, so the documents cannot disagree with what the controller accepts.
"""
