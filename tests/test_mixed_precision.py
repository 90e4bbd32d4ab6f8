"""SparsifyCallback under fastai's mixed precision (`to_fp16`, `to_bf16`) and under bf16 autocast on the CPU.

fastai's `MixedPrecision` autocasts for CUDA only (`autocast('cuda', ...)`), so on a CPU `to_fp16()` and `to_bf16()`
train in float32: here they check that the callbacks work together. `CPUAutocast` below does on the CPU what
`MixedPrecision` does on CUDA, with bfloat16, so the forward really runs in bf16. The CUDA cases run where a GPU is."""
import pytest, torch
from fastai.basics import Callback
from fastai.callback.fp16 import MixedPrecision
from lottery_nb.all import SparsifyCallback, iterative, annealing_cos, get_masks
from lottery_nb.data import synth_dls, synth_learner
from helpers import CheckInvariants

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device here')

class CPUAutocast(Callback):
    "bfloat16 autocast on the CPU, entered and left at the same events as fastai's MixedPrecision"
    order = MixedPrecision.order
    def before_batch(self): self.ac = torch.autocast('cpu', dtype=torch.bfloat16); self.ac.__enter__()
    def after_pred(self): self.seen_dtype = self.pred.dtype; self.learn.pred = self.pred.float()
    def after_loss(self): self.ac.__exit__(None, None, None)

def run(mode, device=None, sched=iterative):
    from fastai.torch_core import set_seed
    set_seed(0)   # python's random too: it seeds the DataLoader's shuffle
    learn = synth_learner(dls=synth_dls(device=device))
    init = {k: v.clone() for k, v in learn.model.state_dict().items()}
    cb = SparsifyCallback(sparsity=60, sched_func=sched, reset='lth')
    chk, extra = CheckInvariants(cb), []
    if mode == 'fp16': learn.to_fp16()
    elif mode == 'bf16': learn.to_bf16()
    elif mode == 'cpu_bf16': extra = [CPUAutocast()]
    with learn.no_bar(), learn.no_logging(): learn.fit(3, 1e-2, cbs=[cb, chk, *extra])
    return learn, cb, chk, init, extra

@pytest.fixture(scope='module')
def cpu_runs():
    "Each CPU mode's fit, made once: the checks of a mode and the fp16-against-fp32 comparison read the same fit"
    done = {}
    def get(mode):
        if mode not in done: done[mode] = run(mode)
        return done[mode]
    return get

@pytest.mark.parametrize('mode', ['fp32', 'fp16', 'bf16', 'cpu_bf16'])
def test_mixed_precision_cpu(cpu_runs, mode):
    learn, cb, chk, init, extra = cpu_runs(mode)
    if extra: assert extra[0].seen_dtype == torch.bfloat16, 'the forward did not run in bf16'
    assert chk.steps == 18 and chk.resets == 3
    assert abs(cb.sparsifier.pruned_pct - 60) < 0.2
    for n, m in get_masks(learn.model).items(): assert m.dtype == torch.bool
    m = learn.model[0]
    assert torch.equal(m.weight.detach()[m.lth_mask], init['0.weight'][m.lth_mask])   # the ticket is the init, exactly
    assert torch.equal(learn.model[1].running_mean, init['1.running_mean'])

def test_fp16_on_cpu_finds_the_fp32_ticket(cpu_runs):
    "On a CPU fastai's MixedPrecision changes nothing, so the masks must be those of a float32 run"
    a, b = cpu_runs('fp32')[0], cpu_runs('fp16')[0]
    for n, m in get_masks(a.model).items(): assert torch.equal(m, get_masks(b.model)[n])

@cuda
@pytest.mark.parametrize('mode', ['fp16', 'bf16'])
def test_mixed_precision_cuda(mode):
    learn, cb, chk, init, _ = run(mode, device='cuda', sched=annealing_cos)
    assert chk.resets == 1 and abs(cb.sparsifier.pruned_pct - 60) < 0.2
    m = learn.model[0]
    assert torch.equal(m.weight.detach()[m.lth_mask], init['0.weight'].cuda()[m.lth_mask])
