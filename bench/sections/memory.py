"""3. Memory: bytes held per prunable weight, and the peak RSS of a training run with and without a mask. Each RSS arm
runs in a fresh process: `python bench/run.py --rss-child ARM`, which calls `rss_child`."""
import contextlib, copy, gc, io, json, re, statistics, subprocess, sys
from pathlib import Path
import torch
from torch import nn
from torchvision import models as tvm
from lottery_nb.core import masked_layers, get_mask
from lottery_nb.sparsifier import Sparsifier
from lottery_nb.data import digits_dls
from lottery_nb.models import tv_resnet18 as resnet18
from ..fits import PRUNED, prunable, torch_global, fai_global, limit, fit_arm
from ..peers import load_fasterai
from ..timing import md_table

RUN = Path(__file__).resolve().parents[1]/'run.py'
RSS_ARMS = ['plain', 'lottery_nb fixed mask', 'torch.nn.utils.prune', 'fasterai 0.4.1']

def _storages(*objs):
    "`{storage pointer: bytes}` of every tensor reachable from the objects, modules' attributes included"
    seen = {}
    def visit(o):
        if isinstance(o, torch.Tensor): s = o.untyped_storage(); seen[s.data_ptr()] = s.nbytes()
        elif isinstance(o, nn.Module):
            for m in o.modules():
                for v in list(m._parameters.values()) + list(m._buffers.values()) + list(vars(m).values()): visit(v)
        elif isinstance(o, dict): [visit(v) for v in o.values()]
        elif isinstance(o, (list, tuple)): [visit(v) for v in o]
    for o in objs: visit(o)
    return seen

def held_bytes(name, fai):
    "Extra bytes per prunable weight held by each library once the model is pruned to 80% (global)"
    torch.manual_seed(0); m = getattr(tvm, name)(); n = sum(l.weight.numel() for l, _ in prunable(m))
    def pruned(prune):
        "`prune` a copy of the model; the copy, and a function of the bytes reachable from objects that it did not hold before"
        mm = copy.deepcopy(m); before = _storages(mm); state = prune(mm)
        return mm, state, lambda *objs: sum(v for k, v in _storages(mm, *objs).items() if k not in before) / n
    res = {}
    mm, sp, extra = pruned(lambda mm: Sparsifier(mm, method='global').prune(PRUNED))
    masks = sum(get_mask(l).untyped_storage().nbytes() for l in masked_layers(mm).values()) / n
    w0 = sum(mm.get_submodule(k.rsplit('.', 1)[0]).weight.numel() * 4 for k in sp.rewind_state
             if k.endswith('.weight') and k.rsplit('.', 1)[0] in sp.layers) / n
    total = extra(sp.rewind_state)
    res['lottery_nb'] = (total, f'bool mask {masks:.3f} + float32 rewind copy of the weights {w0:.3f} '
                         f'+ rewind copy of biases, batch-norm parameters and statistics {total-masks-w0:.3f}')
    _, _, extra = pruned(torch_global)
    res['torch.nn.utils.prune'] = (extra(), 'float32 `weight_mask` + the masked `weight` it recomputes every forward; no rewind copy')
    if fai is not None:
        def fai_prune(mm):
            with contextlib.redirect_stdout(io.StringIO()): fai_global(fai, mm).sparsify_model(PRUNED/100)
        _, _, extra = pruned(fai_prune)
        res['fasterai 0.4.1'] = (extra(), 'float32 `_mask` + `_init_weights`/`_init_biases` of every layer with a weight')
    return n, res

def _status(key): return int(re.search(rf'{key}:\s+(\d+)', open('/proc/self/status').read()).group(1)) / 1024

def rss_child(arm, smoke):
    "In a fresh process: one fit of ResNet-18 on digits in `arm`; print its peak RSS above the RSS before it (MiB)"
    fai = load_fasterai()[0] if arm == 'fasterai 0.4.1' else None
    dls = digits_dls(16, seed=0)
    if smoke: dls = limit(dls, 128, 128)
    torch.set_num_threads(1)   # the arms run side by side
    gc.collect(); open('/proc/self/clear_refs', 'w').write('5')   # resets the peak (VmHWM) to the current RSS
    before = _status('VmRSS')
    fit_arm({'plain': 'plain A'}.get(arm, arm), resnet18, dls, 'Adam', 1, fai)
    print(json.dumps(dict(before=before, peak=_status('VmHWM'))))

def run(a):
    "Bytes held per prunable weight, and the peak RSS of fresh processes side by side: the section's markdown and results"
    torch.set_num_threads(a.default_threads)
    name = 'resnet18' if (a.quick or a.smoke) else 'resnet50'
    n, res = held_bytes(name, a.fai)
    rows = [[k, f'{v:.2f}', why] for k, (v, why) in res.items()]
    arms = [k for k in (RSS_ARMS if not a.smoke else RSS_ARMS[:2]) if k != 'fasterai 0.4.1' or a.fai is not None]
    vals = {k: [] for k in arms}
    for _ in range(1 if (a.quick or a.smoke) else 3):   # the arms of a rep run side by side: memory, not time
        ps = {k: subprocess.Popen([sys.executable, str(RUN), '--rss-child', k] + (['--smoke'] if a.smoke or a.quick else []),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in arms}
        for k, p in ps.items():
            out, err = p.communicate()
            if p.returncode: raise RuntimeError(f'the RSS run of {k!r} failed:\n{err[-2000:]}')
            o = json.loads(out.strip().splitlines()[-1]); vals[k].append((o['peak'] - o['before'], o['peak']))
    rss = {k: (statistics.median(v[0] for v in vs), statistics.median(v[1] for v in vs)) for k, vs in vals.items()}
    nw = sum(l.weight.numel() for l, _ in prunable(resnet18()))
    p0 = rss['plain'][0]
    rrows = [[k, f'{v[1]:.0f}', f'{v[0]:.0f}', f"{v[0] - p0:+.0f}", f"{(v[0] - p0)*2**20/nw:+.1f}"] for k, v in rss.items()]
    txt = ['## 3. Memory', '',
           f'Extra bytes per prunable weight held once torchvision {name} ({n/1e6:.1f}M prunable weights) is pruned to {PRUNED}% '
           '(global): every tensor storage reachable from the model (parameters, buffers, module attributes) and the library\'s '
           'own state, that the unpruned model did not have.', '',
           md_table(['library', 'bytes / prunable weight', 'what they are'], rows), '',
           f'Peak RSS of one process that trains ResNet-18 ({nw/1e6:.1f}M prunable weights) on digits for an epoch with Adam '
           f'({"128 digits" if a.quick or a.smoke else "all of them"}), '
           f'median of {1 if (a.quick or a.smoke) else 3} fresh processes. The fit\'s own memory is its peak RSS above the '
           'RSS just before it (Python, torch, fastai and the data already loaded; the peak is reset there).', '',
           md_table(['arm', 'peak RSS (MiB)', 'the fit\'s own (MiB)', 'vs plain (MiB)', 'vs plain (bytes / prunable weight)'], rrows)]
    return '\n'.join(txt), dict(bytes={k: v for k, (v, _) in res.items()}, rss=rss)

def summary(res):
    "The summary's row: lottery_nb's bytes per prunable weight against the goal of 5"
    b = res['bytes']['lottery_nb']
    return [['at most 5 bytes per prunable weight', f'{b:.3f} (1 mask + 4 rewind + the rest of the rewind state)',
             'yes' if b <= 5 else 'no (by the rewind copy of the non-prunable state)']]
