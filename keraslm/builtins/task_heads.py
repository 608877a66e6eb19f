"""Built-in task heads.

Each factory is `factory(backbone, **config) -> keras.Model`, where
`backbone` maps token ids to hidden states.
"""

from keraslm.hookspecs import hookimpl


@hookimpl
def register_task_heads(register):
    register("causal_lm", "keraslm.heads:causal_lm_model", task="lm",
             description="Next-token logits tied to the token embedding.")
    register("masked_lm", "keraslm.heads:masked_lm_model", task="mlm",
             description="BERT masked-LM transform + tied projection.")
    register("classification", "keraslm.heads:classification_model",
             task="classify",
             description="Pooled (cls/mean/max) sequence classification.")
    register("token_classification", "keraslm.heads:token_classification_model",
             task="tag", description="Per-token tags (first-subword labels).")
    register("seq2seq_lm", "keraslm.heads:seq2seq_lm_model", task="translate",
             description="Encoder-decoder LM with teacher forcing.")
