"""The real-time event path: consume -> validate -> enrich -> score -> decide -> publish.

May import ``features`` and ``onnx_models``; only the CLI and tests import ``stream``.
"""
