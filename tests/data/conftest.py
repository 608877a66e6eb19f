import pytest


@pytest.fixture(scope="session")
def wordpiece(shakespeare_train):
    """A small WordPiece vocabulary learned on a slice of Shakespeare (~2 s)."""
    from keraslm import text

    return text.WordPieceTokenizer.train(shakespeare_train[:4000], vocabulary_size=1000)
