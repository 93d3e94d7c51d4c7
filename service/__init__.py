"""Speech emotion recognition inference service (FastAPI + ONNX Runtime).

Data flows one way: HTTP -> validation -> decode -> model -> post-processing -> response.
This package never imports torch; the training toolkit lives in ``toolkit/``.
"""

__version__ = "0.1.0"
