"""The model registry: ``<version>/model.onnx`` + ``<version>/model.json`` and the live pointer.

Imported by ``training`` (to register) and ``stream`` (to serve).
"""
