"""The training workflow: `keraslm.train(...)` and `keraslm train`.

Example:

```python
import keraslm

result = keraslm.train(task="classify", train="reviews/train.csv",
                       test="reviews/test.csv", epochs=2,
                       output_dir="runs/reviews")
result.metrics["test"]["accuracy"]
```
"""

from keraslm.training.config import TrainConfig
from keraslm.training.cross_validation import cross_validate, stratified_folds
from keraslm.training.run import TrainingError, TrainResult, load_run, load_task, train
from keraslm.training.run_directory import RunDirectory
from keraslm.training.xla import fusible_xla

__all__ = ["RunDirectory", "TrainConfig", "TrainResult", "TrainingError", "cross_validate",
           "fusible_xla", "load_run", "load_task", "stratified_folds", "train"]
