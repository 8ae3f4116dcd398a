"""Test-only transform: first in a training pipeline, it appends [sample index, one draw from NumPy's
generator] to $LOAD_RECORD (JSON lines; one short write per sample, so the data-loading workers' lines do
not mix). Under per-sample seeding the draw is a fingerprint of the sample at its place in the stream:
(seed, pass, index). Counting the lines counts the samples the pipeline loaded."""
import json
import os

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadRecorder(BaseTransform):

    def transform(self, results):
        line = json.dumps([results['sample_idx'], float(np.random.rand())]) + '\n'
        fd = os.open(os.environ['LOAD_RECORD'], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        return results
