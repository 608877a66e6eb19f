"""The logits processors' rules written out by hand, for the decoding
tests to check the library's processors against."""

import numpy as np


def penalized(penalty):
    def process(logits, ids):
        logits = logits.copy()
        for token in set(ids):
            logits[token] = logits[token] / penalty if logits[token] > 0 else logits[token] * penalty
        return logits
    return process


def blocked(size):
    def process(logits, ids):
        logits = logits.copy()
        for start in range(len(ids) - size + 1):
            if ids[start:start + size - 1] == ids[len(ids) - size + 1:]:
                logits[ids[start + size - 1]] = -np.inf
        return logits
    return process
