"""A find_ticket job for the tests of results folders (tests/test_runs.py): `python tests/run_worker.py '{"seeds": [0], "out": ...}'`.
`kill_at_write=n` kills this process with SIGKILL at its n-th file replace, a write in flight: what `kill -9` does at the worst moment.
`raise_at_write=n` makes the n-th file replace raise, as a failing disk or a crashing fit would. The process ends with
SIGTERM's handling of find_ticket (`sigterm_stops`): seeds given back, status 143."""
import json, os, signal, sys, warnings
warnings.filterwarnings('ignore')
import torch
from fastai.basics import Learner, CrossEntropyLossFlat, accuracy, Adam
from lottery_nb.all import find_ticket, mnist1d_dls, mlp

_DLS = None
def learn_fn():
    "The small MLP on MNIST-1D; module-level, so that it pickles to other processes"
    global _DLS
    if _DLS is None: _DLS = mnist1d_dls(bs=128, valid_pct=0.1)
    return Learner(_DLS, mlp(40, (32,)), loss_func=CrossEntropyLossFlat(), metrics=accuracy, opt_func=Adam)

CONFIG = dict(rounds=2, epochs=1, lr=3e-3, rewind='10it', controls=('reinit', 'random_mask', 'mask_at_init', 'signed_constant'))

if __name__ == '__main__':
    kw = {**CONFIG, **json.loads(sys.argv[1])}
    kill, fail = kw.pop('kill_at_write', None), kw.pop('raise_at_write', None)
    if kill is not None or fail is not None:
        real, n = os.replace, [0]
        def replace(a, b):
            n[0] += 1
            if n[0] == kill: os.kill(os.getpid(), signal.SIGKILL)
            if n[0] == fail: raise OSError(5, 'injected I/O error')
            return real(a, b)
        os.replace = replace
    torch.set_num_threads(1)
    from lottery_nb.lease import Terminated
    try: find_ticket(learn_fn, progress=False, **kw)
    except Terminated: sys.exit(143)
    print('done', flush=True)
