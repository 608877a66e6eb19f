import pytest


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
