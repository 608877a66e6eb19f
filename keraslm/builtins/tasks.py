"""Built-in tasks, one module each in `keraslm.tasks`."""

from keraslm.hookspecs import hookimpl

TASKS = {
    "lm": ("keraslm.tasks.lm:LanguageModelTask",
           "Causal language modelling; perplexity, bits per character."),
    "mlm": ("keraslm.tasks.mlm:MaskedLanguageModelTask",
            "Masked language modelling (BERT pretraining); masked-token accuracy."),
    "classify": ("keraslm.tasks.classify:ClassificationTask",
                 "Text classification; accuracy, macro F1, confusion matrix."),
    "tag": ("keraslm.tasks.tag:TaggingTask",
            "Sequence labelling (CoNLL); word accuracy, macro F1; entity F1 for BIO tags."),
    "translate": ("keraslm.tasks.translate:TranslationTask",
                  "Sequence to sequence (source<TAB>target); target-token accuracy."),
}


@hookimpl
def register_tasks(register):
    for name, (factory, description) in TASKS.items():
        register(name, factory, description=description)
