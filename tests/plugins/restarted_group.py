"""A 2-process group that torchrun restarts once, for tests/test_restarts.py (run by tools/dist_run.sh,
which appends ``--launcher pytorch``: ignored). Attempt 0: the group comes up, then rank 1 dies while rank 0
is still busy (torchrun stops it and restarts both). Attempt 1: rank 0 is slow to start, so rank 1 reaches
the rendezvous first; where the store outlives the restart it finds there what attempt 0 wrote:
- gloo's addresses of the dead attempt ('Gloo connectFullMesh failed ... Connection refused');
- a key published under the same name every attempt, as NCCL's unique id is (c10d's ``ProcessGroupNCCL``
  broadcasts it through the store under a name that holds no attempt number): rank 1 reads attempt 0's.
Each rank prints one line 'attempt A rank R read V' when its group is up."""
import os
import sys
import time
from datetime import timedelta

import torch
import torch.distributed as dist

attempt, rank = int(os.environ['TORCHELASTIC_RESTART_COUNT']), int(os.environ['RANK'])
if attempt == 1 and rank == 0:
    time.sleep(3)
dist.init_process_group('gloo', init_method='env://', timeout=timedelta(seconds=60))
store = dist.distributed_c10d._get_default_store()
if rank == 0:
    store.set('unique_id', str(attempt))
read = int(store.get('unique_id'))  # waits for the key where it is not there yet
total = torch.ones(1)
dist.all_reduce(total)
print(f'attempt {attempt} rank {rank} read {read}', flush=True)
if attempt == 0:
    if rank == 1:
        os._exit(1)
    time.sleep(120)  # busy: torchrun stops it when rank 1 dies
dist.barrier()
dist.destroy_process_group()
sys.exit(0 if read == attempt else 3)
