"""Scores of generated text against references: BLEU, chrF and ROUGE.

- `bleu`: corpus BLEU as sacrebleu computes it by default (its `13a`
  tokenization, n-grams up to 4, exponential smoothing of zero counts,
  brevity penalty against the closest reference length), on a 0-100 scale.
- `chrf`: corpus chrF as sacrebleu's default `CHRF()` (character n-grams up
  to 6 with whitespace removed, beta 2, statistics summed over the corpus).
- `rouge`: ROUGE-1, ROUGE-2 and ROUGE-L as the `rouge-score` package
  scores each pair with its default tokenizer (lowercased, runs of
  characters other than `a-z0-9` split words, no stemming), averaged over
  the pairs (the plain mean; rouge-score's `BootstrapAggregator` reports
  the median of resampled means, which differs from it by about 1e-3).

`references` is one reference text per hypothesis, or a list of
reference texts per hypothesis (several references).

Example:

```python
from keraslm import evaluation

evaluation.bleu(["the cat sat on the mat"], ["the cat sat on a mat"])["score"]
evaluation.chrf(hypotheses, references)["score"]
evaluation.rouge(summaries, references)["rougeL"]["fmeasure"]
```
"""

import collections
import math
import re


def _reference_lists(hypotheses, references):
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise ValueError("`hypotheses` and `references` must be lists of texts (one "
                         "reference, or a list of references, per hypothesis). "
                         f"Received a string: {hypotheses if isinstance(hypotheses, str) else references!r}")
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(f"Each hypothesis needs its reference(s). Received "
                         f"{len(hypotheses)} hypotheses and {len(references)} references.")
    lists = [[reference] if isinstance(reference, str) else list(reference)
             for reference in references]
    for index, (hypothesis, options) in enumerate(zip(hypotheses, lists)):
        if not isinstance(hypothesis, str) or not options or not all(
                isinstance(text, str) for text in options):
            raise ValueError(f"Hypothesis {index} must be a text with at least one "
                             f"reference text. Received: {hypothesis!r} against {options!r}")
    return hypotheses, lists


# -- BLEU -------------------------------------------------------------------
_13A_RULES = (
    # Punctuation and symbols become their own tokens.
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    # Periods and commas, unless between digits.
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    # A dash after a digit.
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
)


def tokenize_13a(line):
    """mteval-v13a's tokenization (sacrebleu's default for BLEU).

    Example:

    ```python
    tokenize_13a("Hello, world.")   # 'Hello , world .'
    ```
    """
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        for entity, character in (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"),
                                  ("&gt;", ">")):
            line = line.replace(entity, character)
    line = f" {line} "
    for pattern, replacement in _13A_RULES:
        line = pattern.sub(replacement, line)
    return " ".join(line.split())


def _ngrams(tokens, order):
    return collections.Counter(tuple(tokens[i:i + order])
                               for i in range(len(tokens) - order + 1))


def bleu(hypotheses, references, *, max_order=4):
    """Corpus BLEU (0-100) with sacrebleu's defaults.

    Returns a dict: `score`, `precisions` (per n-gram order, in percent),
    `brevity_penalty`, `hypothesis_length`, `reference_length`.

    Example:

    ```python
    keraslm.evaluation.bleu(["the cat is on the mat"], ["the cat is on a mat"])
    ```
    """
    hypotheses, references = _reference_lists(hypotheses, references)
    matches, totals = [0] * max_order, [0] * max_order
    hypothesis_length = reference_length = 0
    for hypothesis, options in zip(hypotheses, references):
        tokens = tokenize_13a(hypothesis).split()
        reference_tokens = [tokenize_13a(text).split() for text in options]
        hypothesis_length += len(tokens)
        # The closest reference length; the shorter one on a tie.
        reference_length += min((abs(len(r) - len(tokens)), len(r))
                                for r in reference_tokens)[1]
        for order in range(1, max_order + 1):
            counts = _ngrams(tokens, order)
            allowed = collections.Counter()
            for reference in reference_tokens:
                allowed |= _ngrams(reference, order)
            matches[order - 1] += sum(min(count, allowed[gram])
                                      for gram, count in counts.items())
            totals[order - 1] += max(0, len(tokens) - order + 1)
    precisions = [0.0] * max_order
    halving = 1.0
    for order in range(max_order):
        if totals[order] == 0:
            break
        if matches[order] == 0:  # 'exp' smoothing: 1/2, 1/4, ... of a match
            halving *= 2
            precisions[order] = 100.0 / (halving * totals[order])
        else:
            precisions[order] = 100.0 * matches[order] / totals[order]
    if hypothesis_length == 0:
        penalty = 0.0
    elif hypothesis_length < reference_length:
        penalty = math.exp(1 - reference_length / hypothesis_length)
    else:
        penalty = 1.0
    log_mean = sum(math.log(p) if p > 0 else -9999999999.0 for p in precisions) / max_order
    return {"score": penalty * math.exp(log_mean), "precisions": precisions,
            "brevity_penalty": penalty, "hypothesis_length": hypothesis_length,
            "reference_length": reference_length}


# -- chrF -------------------------------------------------------------------
def _char_ngrams(text, max_order):
    text = "".join(text.split())
    return [collections.Counter(text[i:i + n] for i in range(len(text) - n + 1))
            for n in range(1, max_order + 1)]


def _chrf_statistics(hypothesis_grams, reference_grams):
    statistics = []
    for hypothesis, reference in zip(hypothesis_grams, reference_grams):
        statistics += [sum(hypothesis.values()), sum(reference.values()),
                       sum((hypothesis & reference).values())]
    return statistics


def _chrf_score(statistics, beta):
    factor = beta ** 2
    precision_sum = recall_sum = 0.0
    orders = 0
    for index in range(0, len(statistics), 3):
        hypothesis, reference, match = statistics[index:index + 3]
        if hypothesis > 0 and reference > 0:
            precision_sum += match / hypothesis
            recall_sum += match / reference
            orders += 1
    if orders == 0:
        return 0.0
    precision, recall = precision_sum / orders, recall_sum / orders
    if precision + recall == 0:
        return 0.0
    return 100 * (1 + factor) * precision * recall / (factor * precision + recall)


def chrf(hypotheses, references, *, char_order=6, beta=2):
    """Corpus chrF (0-100) with sacrebleu's defaults.

    Character n-gram counts (whitespace removed) are summed over the
    corpus; with several references per hypothesis, the one with the best
    sentence chrF counts (as in sacrebleu). Returns a dict: `score`,
    `precision`, `recall` (averaged over the n-gram orders, in percent).

    Example:

    ```python
    keraslm.evaluation.chrf(["Y dijo Dios"], ["Y dijo Dios: Sea la luz"])["score"]
    ```
    """
    hypotheses, references = _reference_lists(hypotheses, references)
    totals = [0] * (3 * char_order)
    for hypothesis, options in zip(hypotheses, references):
        grams = _char_ngrams(hypothesis, char_order)
        best = max((_chrf_statistics(grams, _char_ngrams(text, char_order))
                    for text in options), key=lambda stats: _chrf_score(stats, beta))
        totals = [a + b for a, b in zip(totals, best)]
    precisions = [totals[i + 2] / totals[i] for i in range(0, len(totals), 3) if totals[i]]
    recalls = [totals[i + 2] / totals[i + 1] for i in range(0, len(totals), 3)
               if totals[i + 1]]
    return {"score": _chrf_score(totals, beta),
            "precision": 100 * sum(precisions) / len(precisions) if precisions else 0.0,
            "recall": 100 * sum(recalls) / len(recalls) if recalls else 0.0}


# -- ROUGE ------------------------------------------------------------------
def rouge_tokens(text):
    """`rouge-score`'s default tokenization: lowercased, split at every run
    of characters other than `a-z0-9` (so accented letters split words)."""
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


def _f_measure(overlap, hypothesis_count, reference_count):
    precision = overlap / hypothesis_count if hypothesis_count else 0.0
    recall = overlap / reference_count if reference_count else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f


def _lcs_length(a, b):
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge(hypotheses, references, *, types=("rouge1", "rouge2", "rougeL")):
    """ROUGE-N and ROUGE-L F-measure, precision and recall, per pair as the
    `rouge-score` package scores them, averaged over the pairs (in [0, 1]).

    With several references per hypothesis, the best-scoring one counts
    for each type (rouge-score's `score_multi`).

    Returns:
        dict: type -> {"precision", "recall", "fmeasure"}.

    Example:

    ```python
    keraslm.evaluation.rouge(["the cat sat"], ["the cat sat down"])["rouge1"]
    ```
    """
    hypotheses, references = _reference_lists(hypotheses, references)
    for name in types:
        if not (name == "rougeL" or re.fullmatch(r"rouge[1-9]", name)):
            raise ValueError(f"Unknown ROUGE type {name!r}. Expected 'rouge1'..'rouge9' "
                             f"or 'rougeL'.")
    sums = {name: [0.0, 0.0, 0.0] for name in types}
    for hypothesis, options in zip(hypotheses, references):
        tokens = rouge_tokens(hypothesis)
        for name in types:
            best = None
            for text in options:
                reference = rouge_tokens(text)
                if name == "rougeL":
                    scores = _f_measure(_lcs_length(reference, tokens), len(tokens),
                                        len(reference))
                else:
                    order = int(name[5:])
                    grams, reference_grams = _ngrams(tokens, order), _ngrams(reference, order)
                    scores = _f_measure(sum((grams & reference_grams).values()),
                                        sum(grams.values()), sum(reference_grams.values()))
                if best is None or scores[2] > best[2]:
                    best = scores
            sums[name] = [a + b for a, b in zip(sums[name], best)]
    count = max(len(hypotheses), 1)
    return {name: dict(zip(("precision", "recall", "fmeasure"),
                           (value / count for value in values)))
            for name, values in sums.items()}
