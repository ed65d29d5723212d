"""The offline pipeline: data, cleaning, label, training, evaluation, report, export.

May import ``features`` and ``onnx_models``; never imports ``stream``.
"""
