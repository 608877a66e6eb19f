"""Where the test corpora are: `../shared/data` beside the checkout.

Set `KERASLM_TEST_DATA` to use another copy. A missing corpus fails the test
that needs it (never a silent skip): the suite is meant to learn from real
text.
"""

import os
import pathlib

DATA_DIR = pathlib.Path(os.environ.get(
    "KERASLM_TEST_DATA",
    pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"))


def path(*parts) -> pathlib.Path:
    """Returns `DATA_DIR/parts...`, failing clearly if it does not exist."""
    target = DATA_DIR.joinpath(*parts)
    if not target.exists():
        raise FileNotFoundError(
            f"Test corpus {target} not found. The suite reads the shared corpora "
            f"from ../shared/data beside the checkout; set KERASLM_TEST_DATA to "
            f"their folder.")
    return target
