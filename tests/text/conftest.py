import os
import pathlib

import pytest

# The shared corpora live next to the checkout (never copied into the repo).
DATA_DIR = pathlib.Path(os.environ.get(
    "KERASLM_TEST_DATA",
    pathlib.Path(__file__).resolve().parents[3] / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir():
    if not (DATA_DIR / "shakespeare" / "train.txt").exists():
        pytest.skip(f"shared corpora not found at {DATA_DIR} (set KERASLM_TEST_DATA)")
    return DATA_DIR


@pytest.fixture(scope="session")
def shakespeare_train(data_dir):
    from keraslm import data

    return data.read_text(data_dir / "shakespeare" / "train.txt")


@pytest.fixture(scope="session")
def shakespeare_test(data_dir):
    from keraslm import data

    return data.read_text(data_dir / "shakespeare" / "test.txt")


@pytest.fixture(scope="session")
def wordpiece(shakespeare_train):
    """WordPiece learned on 20,000 lines of shakespeare/train.txt (~10 s)."""
    from keraslm import text

    return text.WordPieceTokenizer.train(shakespeare_train[:20000], vocabulary_size=2000)


@pytest.fixture(scope="session", params=["unigram", "bpe"])
def sentencepiece(request, shakespeare_train):
    from keraslm import text

    return text.SentencePieceTokenizer.train(
        shakespeare_train[:20000], vocabulary_size=2000, model_type=request.param)
