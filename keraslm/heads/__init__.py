"""Task heads: layers and task models built on a backbone's hidden states.

Registered (`keraslm.registry.task_heads`) as functions
`factory(backbone, **config) -> keras.Model`; see
`keraslm.heads.task_models`.
"""

from keraslm.heads.classification_head import ClassificationHead
from keraslm.heads.masked_lm_head import MaskedLMTransform, OutputBias
from keraslm.heads.padding_mask import PaddingMask
from keraslm.heads.task_models import (
    causal_lm_model, classification_model, masked_lm_model, padding_mask_of,
    seq2seq_lm_model, token_classification_model,
)

__all__ = [
    "ClassificationHead", "MaskedLMTransform", "OutputBias", "PaddingMask", "causal_lm_model",
    "classification_model", "masked_lm_model", "padding_mask_of", "seq2seq_lm_model",
    "token_classification_model",
]
