"""What is generated from the specification: the MQTT interface schema (JSON Schema and
AsyncAPI, :mod:`.schema`) and the requirement traceability matrix (:mod:`.traceability`)."""
