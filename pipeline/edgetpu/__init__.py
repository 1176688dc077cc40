"""Coral Edge TPU support: a static compatibility check of int8 .tflite files and the compile step.

`check` predicts, op by op, what `edgetpu_compiler` would map to the Edge TPU; `compiler`
runs the real compiler when it is installed and parses its operation log.
"""
