"""Task heads: layers that turn backbone hidden states into task outputs."""

from keraslm.heads.classification_head import ClassificationHead

__all__ = ["ClassificationHead"]
