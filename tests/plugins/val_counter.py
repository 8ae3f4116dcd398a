"""Test-only metric: ``count`` is 1 at the first validation, 2 at the second, ...: with
``save_best='count', rule='greater'`` every validation makes a new best checkpoint."""
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS


@METRICS.register_module()
class ValCounter(BaseMetric):

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.count = 0

    def process(self, data_batch, data_samples) -> None:
        self.results.append(0)

    def compute_metrics(self, results) -> dict:
        self.count += 1
        return dict(count=self.count)
