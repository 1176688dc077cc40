"""Standalone benchmark agent copied to a Raspberry Pi / Coral board and run there.

Stdlib + numpy + one TFLite runtime only: it never imports the host pipeline or TensorFlow's
training stack, and keeps Python 3.9 compatible syntax.
"""
AGENT_VERSION = "1.0.0"
SCHEMA_VERSION = 1
