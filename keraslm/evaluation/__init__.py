"""`keraslm.evaluation`: task metrics computed from a model's outputs."""

from keraslm.evaluation.classification import binary_roc_auc, classification_metrics
from keraslm.evaluation.entities import entity_metrics, entity_spans
from keraslm.evaluation.text import bleu, chrf, rouge

__all__ = ["binary_roc_auc", "classification_metrics", "bleu", "chrf", "rouge",
           "entity_metrics", "entity_spans"]
