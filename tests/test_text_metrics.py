"""BLEU and chrF equal sacrebleu's defaults, ROUGE equals the rouge-score
package, on real Bible verses with perturbed hypotheses and on edge cases."""

import numpy as np
import pytest
import sacrebleu
from rouge_score import rouge_scorer

import shared_data
from keraslm import evaluation


def verses(count=300):
    with open(shared_data.path("bible_en_es", "valid.tsv"), encoding="utf-8") as handle:
        return [line.rstrip("\n").split("\t") for line in handle][:count]


def perturbed(texts, seed):
    """Hypotheses of graded quality: words dropped, swapped and replaced."""
    rng = np.random.default_rng(seed)
    vocabulary = sorted({w for t in texts for w in t.split()})
    out = []
    for text in texts:
        words = text.split()
        keep = [w for w in words if rng.random() > rng.uniform(0, 0.6)]
        for _ in range(rng.integers(0, 3)):
            if len(keep) > 1:
                i = rng.integers(len(keep) - 1)
                keep[i], keep[i + 1] = keep[i + 1], keep[i]
        keep = [vocabulary[rng.integers(len(vocabulary))] if rng.random() < 0.1 else w
                for w in keep]
        out.append(" ".join(keep))
    return out


EDGE_CASES = [
    ("", "Y dijo Dios"),                       # empty hypothesis
    ("a b c", "d e f"),                        # nothing matches
    ("Dios", "Dios"),                          # shorter than 2-grams
    ("el 3.5% de 1,000 -- \"x\" &amp; y.", "el 3.5 % de 1,000 - x & y ."),
    ("Él dijo: ¿quién? (sí)", "él dijo ¿ quién ? ( sí )"),
    ("2-3 años; 10-12", "2 - 3 años ; 10 - 12"),
]


@pytest.mark.parametrize("language", [0, 1])
def test_bleu_and_chrf_equal_sacrebleu_on_bible_verses(language):
    references = [pair[language] for pair in verses()]
    for seed in range(3):
        hypotheses = perturbed(references, seed)
        ours, theirs = evaluation.bleu(hypotheses, references), sacrebleu.corpus_bleu(
            hypotheses, [references])
        assert ours["score"] == pytest.approx(theirs.score, abs=1e-9)
        assert ours["precisions"] == pytest.approx(theirs.precisions, abs=1e-9)
        assert ours["brevity_penalty"] == pytest.approx(theirs.bp, abs=1e-12)
        assert (ours["hypothesis_length"], ours["reference_length"]) == (
            theirs.sys_len, theirs.ref_len)
        assert evaluation.chrf(hypotheses, references)["score"] == pytest.approx(
            sacrebleu.corpus_chrf(hypotheses, [references]).score, abs=1e-9)
    # A range of scores was covered, not only near-identical texts.
    assert 5 < ours["score"] < 80


def test_bleu_and_chrf_edge_cases_and_several_references():
    hypotheses = [h for h, _ in EDGE_CASES]
    references = [r for _, r in EDGE_CASES]
    for index in range(len(EDGE_CASES)):
        one_h, one_r = hypotheses[index:index + 1], references[index:index + 1]
        assert evaluation.bleu(one_h, one_r)["score"] == pytest.approx(
            sacrebleu.corpus_bleu(one_h, [one_r]).score, abs=1e-9), EDGE_CASES[index]
        assert evaluation.chrf(one_h, one_r)["score"] == pytest.approx(
            sacrebleu.corpus_chrf(one_h, [one_r]).score, abs=1e-9), EDGE_CASES[index]
    # Several references per hypothesis (sacrebleu takes them as streams).
    pairs = verses(120)
    spanish, english = [p[1] for p in pairs], [p[0] for p in pairs]
    second = perturbed(spanish, 7)
    hypotheses = perturbed(spanish, 8)
    ours = evaluation.bleu(hypotheses, [list(r) for r in zip(spanish, second)])
    theirs = sacrebleu.corpus_bleu(hypotheses, [spanish, second])
    assert ours["score"] == pytest.approx(theirs.score, abs=1e-9)
    assert ours["reference_length"] == theirs.ref_len
    assert evaluation.chrf(hypotheses, [list(r) for r in zip(spanish, english)])[
        "score"] == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [spanish, english]).score,
                                  abs=1e-9)


def test_rouge_equals_rouge_score():
    # English and Spanish: rouge-score's tokenizer splits words at accented
    # letters ("dió" -> "di", "o").
    references = ([pair[0] for pair in verses(100)] + [pair[1] for pair in verses(100)]
                  + ["", "Mixed CASE, punct-uation 42_x"])
    hypotheses = perturbed(references[:200], 3) + ["something", "mixed case punct 42 x"]
    types = ["rouge1", "rouge2", "rougeL"]
    scorer = rouge_scorer.RougeScorer(types)
    scores = [scorer.score(reference, hypothesis)
              for hypothesis, reference in zip(hypotheses, references)]
    ours = evaluation.rouge(hypotheses, references)
    for name in types:
        for field in ("precision", "recall", "fmeasure"):
            expected = np.mean([getattr(score[name], field) for score in scores])
            assert ours[name][field] == pytest.approx(expected, abs=1e-12), (name, field)
    # Several references: the best per pair, as score_multi.
    second = perturbed(references[:50], 4)
    multi = evaluation.rouge(hypotheses[:50], [list(r) for r in zip(references, second)])
    best = np.mean([scorer.score_multi([r, s], h)["rougeL"].fmeasure
                    for h, r, s in zip(hypotheses, references, second)])
    assert multi["rougeL"]["fmeasure"] == pytest.approx(best, abs=1e-9)


@pytest.mark.parametrize("call, message", [
    (lambda: evaluation.bleu(["a"], ["a", "b"]), r"Received 1 hypotheses and 2 references"),
    (lambda: evaluation.chrf("a b", ["a b"]), r"Received a string: 'a b'"),
    (lambda: evaluation.rouge(["a"], [[]]), r"at least one reference"),
    (lambda: evaluation.rouge(["a"], ["a"], types=["rougeX"]), r"Unknown ROUGE type 'rougeX'"),
])
def test_bad_inputs_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
