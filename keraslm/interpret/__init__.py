"""`keraslm.interpret`: pictures of what a trained model does.

| function | what |
|---|---|
| `attention_scores(model, token_ids)` | attention probabilities `(layers, heads, query, key)` of a Transformer |
| `plot_attention(scores, tokens, path)` | PNG grid of heatmaps, layers x heads, tokens on both axes |
| `token_saliency(model, tokenizer, text, target)` | gradient x input per token of a classification |
| `write_saliency_html(result, path)`, `plot_saliency(result, path)` | the text highlighted by saliency (HTML, PNG) |
| `classification_predictions(run_dir)` | a classify run's softmax on its test/validation data |
| `plot_confusion_matrix(predictions, path)` | confusion-matrix heatmap PNG |
| `roc_curve`, `roc_auc`, `plot_roc_curve(predictions, path)` | ROC points, AUC, ROC PNG (one-vs-rest beyond two classes) |
| `token_pieces(tokenizer, ids)` | how tokens are labelled and joined |

The same pictures from the command line (written into the run directory,
or `-o DIR`; each path printed):

```bash
keraslm plot runs/reviews                      # training_curve.png, confusion_matrix.png, roc_curve.png
keraslm plot runs/reviews --saliency "Great coffee, awful price."   # saliency.html + .png
keraslm plot runs/reviews --attention "Great coffee, awful price."  # attention.png
keraslm plot runs/lm --attention "ROMEO: But soft" --curves -o pictures
```

In Python:

```python
import keraslm
from keraslm import interpret
from keraslm.training import load_run

config, task, model, tokenizer = load_run("runs/reviews")
ids, _ = interpret.encode_text(tokenizer, "Great coffee, awful price.")  # [CLS] ... [SEP]
scores = interpret.attention_scores(model, ids)        # (layers, heads, length, length)
labels = [piece.label for piece in interpret.token_pieces(tokenizer, ids)]
interpret.plot_attention(scores, labels, "attention.png")

result = interpret.token_saliency(model, tokenizer, "Great coffee, awful price.",
                                  labels=task.label_vocabulary.labels)
interpret.write_saliency_html(result, "saliency.html")
interpret.plot_saliency(result, "saliency.png")

predictions = interpret.classification_predictions("runs/reviews")
interpret.plot_confusion_matrix(predictions, "confusion_matrix.png")
interpret.plot_roc_curve(predictions, "roc_curve.png")
```

Attention scores are those the model computes (each Transformer block
called again on its own inputs with `return_attention_scores=True`); in a
causal model the upper triangle is masked, and masked cells (causal, padded
keys) are drawn grey. Saliency is the gradient of the target class's
log-probability times the token embedding, summed over the hidden dimension
(signed: green towards the class, red away; `reduction="l2"` for the norm).
Pictures are drawn with matplotlib's Agg backend (no display needed).
"""

from keraslm.interpret._common import Piece, encode_text, token_pieces
from keraslm.interpret.attention import attention_blocks, attention_scores, plot_attention
from keraslm.interpret.classification import (
    ClassificationPredictions, classification_predictions, plot_confusion_matrix,
    plot_roc_curve, roc_auc, roc_curve,
)
from keraslm.interpret.saliency import (
    TokenSaliency, embedding_output, plot_saliency, saliency_html, token_saliency,
    write_saliency_html,
)

__all__ = [
    "ClassificationPredictions", "Piece", "TokenSaliency", "attention_blocks",
    "attention_scores", "classification_predictions", "embedding_output", "encode_text",
    "plot_attention", "plot_confusion_matrix", "plot_roc_curve", "plot_saliency", "roc_auc",
    "roc_curve", "saliency_html", "token_pieces", "token_saliency", "write_saliency_html",
]
