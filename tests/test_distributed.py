"""SparsifyCallback on two processes (DDP through fastai's `distrib_ctx` and Accelerate, gloo on CPU), against what
one process finds with the same data in the same order. The worker is tests/ddp_worker.py."""
import json, os, subprocess, sys
from pathlib import Path
import pytest, torch
from lottery_nb.tickets import read_ticket

pytest.importorskip('accelerate', reason="two-process training needs the distributed extra: pip install -e '.[distributed]' (the dev extra has it)")
here = Path(__file__).resolve().parent
DEADLINE = 900   # seconds for two ranks to train and leave: under a minute here, so it holds on a machine three times slower

def torchrun(args, what, **kw):
    "Run `python -m torch.distributed.run --standalone --nproc_per_node 2 *args`; past DEADLINE, fail saying what it ran"
    try: return subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', *args],
                               capture_output=True, text=True, timeout=DEADLINE, **kw)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f'waited {DEADLINE} s for two ranks to run {what}; in vain. Its last output:\n{(e.stderr or b"")[-3000:]!r}')

def launch(out, bn):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONWARNINGS': 'ignore'}
    r = torchrun([str(here/'ddp_worker.py'), str(out), 'bn' if bn else 'plain'], 'tests/ddp_worker.py', env=env)
    done = all((out/f'done{k}').exists() for k in range(2))
    # torch's gloo backend can abort a rank at exit, after its work, with "terminate called without an active
    # exception" (its threads outlive the process group); that alone, once both ranks have finished, is not a failure
    teardown = 'terminate called without an active exception' in r.stderr and done
    assert r.returncode == 0 or teardown, r.stdout[-3000:] + r.stderr[-3000:]
    assert done, 'a rank did not finish its work'
    return json.loads((out/'result.json').read_text())

def test_order_after_distributed_trainer():
    from fastai.distributed import DistributedTrainer
    from lottery_nb.callback import SparsifyCallback
    assert SparsifyCallback.order > DistributedTrainer.order

@pytest.mark.slow
def test_ranks_agree_after_every_prune_and_reset(tmp_path):
    res = launch(tmp_path, bn=True)
    assert res['world_size'] == 2
    assert res['n_train'] == 6, 'the schedule must count the batches this rank iterates (96 samples / 16)'
    assert res['events'] == ['prune', 'reset'] * 3
    whats = [c['what'] for c in res['checks']]
    assert whats == ['prune', 'reset'] * 3 + ['end of fit'], whats   # the last reset comes at the end of the fit
    assert all(c['identical'] for c in res['checks']), res['checks']   # weights, BN buffers and masks, bit for bit
    assert abs(res['sparsity'] - 60) < 0.1
    # the ticket's survivors are rank 0's initial weights: the rewind point was taken after DDP synchronised the ranks
    t = read_ticket(tmp_path/'ticket.safetensors')
    init = torch.load(tmp_path/'init_rank0.pt', weights_only=True)
    for k, v in t['rewind'].items():
        if k.endswith('weight') and k.rsplit('.', 1)[0] in t['masks']:
            keep = t['masks'][k.rsplit('.', 1)[0]]
            assert torch.equal(v[keep], init[k][keep]), k
        else: assert torch.equal(v, init[k]), k

@pytest.mark.slow
def test_two_ranks_find_the_single_process_ticket(tmp_path):
    "2 ranks x 16 samples a batch = 1 process x 32, when the one process sees each pair of rank batches as one batch"
    import ddp_worker as w
    from fastai.basics import DataLoaders, DataLoader, Learner, CrossEntropyLossFlat, accuracy, Adam
    from lottery_nb.all import SparsifyCallback, iterative, get_masks, model_state
    launch(tmp_path, bn=False)
    ds = w.dataset()[:192]
    order = [i for b in range(6) for i in [*range(16*b, 16*b+16), *range(96+16*b, 96+16*b+16)]]
    torch.manual_seed(100)   # rank 0's seed
    m = w.model(False)
    learn = Learner(DataLoaders(DataLoader([ds[i] for i in order], bs=32, shuffle=False), DataLoader(w.dataset()[192:], bs=32)),
                    m, loss_func=CrossEntropyLossFlat(), metrics=accuracy, opt_func=Adam)
    with learn.no_bar(), learn.no_logging():
        learn.fit(3, 1e-2, cbs=SparsifyCallback(sparsity=60, method='global', sched_func=iterative, reset='lth'))
    t = read_ticket(tmp_path/'ticket.safetensors')
    masks, state = get_masks(m), model_state(m)
    # Tolerance: DDP averages two half-batch gradients, one process takes one whole-batch gradient. The sums are the
    # same up to float rounding, so weights agree to ~1e-6 and a mask can differ only where two scores nearly tie.
    n = sum(v.numel() for v in masks.values())
    differ = sum(int((masks[k] != t['masks'][k]).sum()) for k in masks)
    print(f'masks differ in {differ} of {n} entries')
    assert differ <= 0.002 * n, (differ, n)
    for k, v in state.items():
        layer = k.rsplit('.', 1)[0]
        if layer in masks and k.endswith('weight'):
            both = masks[layer] & t['masks'][layer]
            assert torch.equal(v[both], t['rewind'][k][both]), k   # the rewind point itself is exact: rank 0's init
        else: assert torch.equal(v, t['rewind'][k]), k

SHIM = '''# Run the page's train.py on CPU processes: fastai's DistributedDL sends its indices through a CUDA tensor, and
# distrib_ctx() defaults to CUDA and SyncBatchNorm, which need GPUs. This file is the test's, never the library's.
import torch, torch.distributed as dist
from fastai.distributed import DistributedDL
from fastai.learner import Learner
def _broadcast_cpu(self, t, rank):
    t = torch.tensor(t, dtype=torch.long); dist.broadcast(t, rank); return t.tolist()
DistributedDL._broadcast = _broadcast_cpu
_ctx = Learner.distrib_ctx
Learner.distrib_ctx = lambda self, *a, **k: _ctx(self, *a, **{**k, 'cpu': True, 'sync_bn': False})
'''

@pytest.mark.slow
def test_the_pages_script_runs_as_printed(tmp_path):
    "The train.py of the 'Training on several GPUs' page, extracted from the notebook as it prints it, on 2 gloo processes"
    nb = json.loads((here.parent/'nbs'/'10_distributed.ipynb').read_text())
    src = next(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code' and '# train.py' in ''.join(c['source']))
    (tmp_path/'train.py').write_text(src.replace('#| eval: false\n', ''))
    (tmp_path/'sitecustomize.py').write_text(SHIM)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONWARNINGS': 'ignore', 'PYTHONPATH': str(tmp_path)}
    r = torchrun(['train.py'], "the page's train.py", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    t = read_ticket(tmp_path/'ticket.safetensors')
    assert abs(t['meta']['sparsity'] - 80) < 0.1
