"""Ticket files: exact round trips for an MLP, a CNN with batch norm and a filter ticket; a file any tool reads with
safetensors and json alone; tickets of earlier versions still load; and a malicious or malformed file is refused with
the model bit for bit unchanged."""
import json, os, pickle, struct, subprocess, sys
from pathlib import Path
import pytest, torch
from torch import nn
from lottery_nb.all import Sparsifier, save_ticket, load_ticket, read_ticket, masked_layers, get_masks, model_state

def mlp(): torch.manual_seed(0); return nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 3))
def cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))

def trained(model, kw, sp_pct=60):
    "A ticket: trained-looking weights and batch-norm statistics, pruned, rewound; with its trained weights"
    sp = Sparsifier(model, **kw)
    with torch.no_grad():
        for p in model.parameters(): p.add_(torch.randn_like(p))
        for b in model.buffers():
            if b.is_floating_point(): b.add_(torch.rand_like(b))
    model(torch.randn(4, *(3, 8, 8) if isinstance(model[0], nn.Conv2d) else (10,)))   # num_batches_tracked moves
    sp.prune(sp_pct); done = model_state(model); sp.reset()
    return sp, done

CASES = {'mlp': (mlp, dict(method='global')), 'cnn_bn': (cnn, dict(method='local')), 'filter': (cnn, dict(granularity='filter'))}

@pytest.mark.parametrize('case', list(CASES))
def test_round_trip_is_exact(tmp_path, case):
    make, kw = CASES[case]
    m = make(); sp, done = trained(m, kw)
    path = save_ticket(tmp_path/'t', sp, trained=done, seed=3, round=2, settings={'prune_pct': 20, 'layer_rates': None}, build='your own')
    t = read_ticket(path)
    for n, k in get_masks(m).items(): assert torch.equal(t['masks'][n], k), n
    for k, v in sp.rewind_state.items(): assert torch.equal(t['rewind'][k], v) and t['rewind'][k].dtype == v.dtype, k
    for k, v in done.items(): assert torch.equal(t['trained'][k], v), k
    h = t['meta']
    assert (h['seed'], h['round'], h['settings'], h['granularity'], h['format']) == (3, 2, {'prune_pct': 20, 'layer_rates': None}, kw.get('granularity', 'weight'), 'lottery_nb.ticket')
    assert abs(h['sparsity'] - 100 * (1 - sum(int(k.sum()) for k in get_masks(m).values()) / sum(k.numel() for k in get_masks(m).values()))) < 1e-3
    m2 = make(); sp2 = load_ticket(path, m2)
    for k, v in m.state_dict().items(): assert torch.equal(m2.state_dict()[k], v), k   # weights, masks and BN buffers
    for k, v in sp.rewind_state.items(): assert torch.equal(sp2.rewind_state[k], v), k
    m3 = make(); load_ticket(path, m3, weights='trained')
    for k, v in done.items(): assert torch.equal(m3.state_dict()[k], v), k

READER = r'''
import json, sys
from safetensors import safe_open
with safe_open(sys.argv[1], 'np') as f:
    meta = f.metadata()
    header = json.loads(meta['ticket'])
    masks = {k[5:]: f.get_tensor(k) for k in f.keys() if k.startswith('mask.')}
    rewind = {k[7:]: f.get_tensor(k) for k in f.keys() if k.startswith('rewind.')}
assert 'lottery_nb' not in sys.modules and 'torch' not in sys.modules
print(json.dumps(dict(format=meta['format'], sparsity=header['sparsity'], kept={k: int(v.sum()) for k, v in masks.items()},
                      dtypes=sorted({str(v.dtype) for v in masks.values()}), n_rewind=len(rewind), seed=header['seed'])))
'''

def test_any_tool_reads_it_with_safetensors_and_json_alone(tmp_path):
    m = cnn(); sp, _ = trained(m, dict(method='local'))
    path = save_ticket(tmp_path/'t.safetensors', sp, seed=7)
    r = subprocess.run([sys.executable, '-c', READER, str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got['format'] == 'lottery_nb.ticket' and got['seed'] == 7 and got['dtypes'] == ['bool']
    assert got['kept'] == {n: int(k.sum()) for n, k in get_masks(m).items()} and got['n_rewind'] == len(sp.rewind_state)
    # and the header is plain JSON after an 8-byte length, readable with no library at all
    b = path.read_bytes(); n = struct.unpack('<Q', b[:8])[0]
    assert json.loads(json.loads(b[8:8+n])['__metadata__']['ticket'])['seed'] == 7

class Payload:
    "What an attacker pickles: unpickling calls os.system"
    def __init__(self, cmd): self.cmd = cmd
    def __reduce__(self): return (os.system, (self.cmd,))

@pytest.fixture
def legacy(tmp_path):
    "A ticket as versions before the safetensors format wrote it: torch.save of plain tensors"
    m = mlp(); sp = Sparsifier(m, method='global').prune(60).reset()
    t = dict(masks=get_masks(m), rewind={k: v.clone() for k, v in sp.rewind_state.items()},
             meta=dict(sparsity=sp.pruned_pct, criteria='large_final', granularity='weight', version='0.0.1', round=3))
    torch.save(t, tmp_path/'old.pt')
    return tmp_path/'old.pt', m

def snapshot(m): return {k: v.clone() for k, v in m.state_dict().items()}

def assert_unchanged(m, before):
    assert masked_layers(m) == {}
    sd = m.state_dict()
    assert sd.keys() == before.keys() and all(torch.equal(sd[k], before[k]) for k in sd)

def test_ticket_from_an_older_version_loads(legacy):
    path, m = legacy
    m2 = mlp(); sp2 = load_ticket(path, m2)
    assert sp2.meta['round'] == 3
    for (k, a), b in zip(m.state_dict().items(), m2.state_dict().values()): assert torch.equal(a, b), k

@pytest.mark.parametrize('where', ['masks', 'meta', 'top'])
def test_malicious_pickle_runs_nothing(tmp_path, legacy, where):
    marker = tmp_path/'owned'
    t = torch.load(legacy[0], weights_only=True)
    evil = Payload(f'echo owned > {marker}')
    if where == 'masks': t['masks']['0'] = evil
    elif where == 'meta': t['meta']['round'] = evil
    else: t = evil
    bad = tmp_path/'evil.pt'
    torch.save(t, bad)                          # torch.save pickles the payload
    m = mlp(); before = snapshot(m)
    with pytest.raises(ValueError, match='not a plain-data ticket.*Nothing in it was run'): load_ticket(bad, m)
    assert not marker.exists(), 'loading the ticket ran code from the file'
    assert_unchanged(m, before)
    with open(bad, 'wb') as f: pickle.dump(t, f)   # a plain pickle (not torch's zip format) is refused too
    with pytest.raises(ValueError): load_ticket(bad, m)
    assert not marker.exists()
    assert_unchanged(m, before)

def _header(b):
    n = struct.unpack('<Q', b[:8])[0]
    return n, json.loads(b[8:8+n])

def _with_header(b, h):
    n, _ = _header(b)
    raw = json.dumps(h).encode(); raw += b' ' * (-len(raw) % 8)
    return struct.pack('<Q', len(raw)) + raw + b[8+n:]

@pytest.mark.parametrize('case, match', [
    ('empty', 'is empty'), ('truncated', 'truncated'), ('garbage', 'not a readable ticket'),
    ('huge_header', 'not a readable ticket'), ('bad_offsets', 'not a readable ticket'), ('no_format', 'but not a ticket'),
    ('bad_header_json', 'no readable ticket header'), ('float_mask', 'not bool'),
    ('wrong_arch', "layer '2' does not match"), ('other_names', 'which this model lacks'),
    ('mask_shape', "mask for layer '0' has shape"), ('legacy_state_dict', "needs 'masks'"), ('bad_kwargs', "'kernel'"),
    ('folder_without_ticket', 'a folder without a ticket')])
def test_bad_file_leaves_model_unchanged(tmp_path, case, match):
    m0 = mlp(); sp, _ = trained(m0, dict(method='global'))
    good = save_ticket(tmp_path/'good.safetensors', sp)
    b = good.read_bytes(); n, h = _header(b)
    f, kw, m = tmp_path/'bad.safetensors', {}, mlp()
    if case == 'empty': f.write_bytes(b'')
    elif case == 'truncated': f.write_bytes(b[:len(b)//2])
    elif case == 'garbage': f.write_bytes(os.urandom(300))
    elif case == 'huge_header': f.write_bytes(struct.pack('<Q', 1 << 40) + b[8:])
    elif case == 'bad_offsets':
        k = next(k for k in h if k != '__metadata__'); h[k]['data_offsets'] = [0, 10**9]; f.write_bytes(_with_header(b, h))
    elif case == 'no_format': h['__metadata__'] = {'format': 'pt'}; f.write_bytes(_with_header(b, h))
    elif case == 'bad_header_json': h['__metadata__']['ticket'] = '{"cut'; f.write_bytes(_with_header(b, h))
    elif case == 'float_mask':
        from safetensors.torch import save_file
        save_file({'mask.0': torch.ones(20, 10), **{f'rewind.{k}': v for k, v in model_state(mlp()).items()}}, f,
                  metadata=dict(format='lottery_nb.ticket', format_version='1', ticket='{}'))
    elif case == 'wrong_arch': f = good; m = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 4))
    elif case == 'other_names': f = good; m = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Sequential(nn.Linear(20, 3)))
    elif case == 'mask_shape':
        from safetensors.torch import save_file
        save_file({'mask.0': torch.ones(5, 5, dtype=torch.bool), **{f'rewind.{k}': v for k, v in model_state(mlp()).items()}}, f,
                  metadata=dict(format='lottery_nb.ticket', format_version='1', ticket='{}'))
    elif case == 'legacy_state_dict': f = tmp_path/'sd.pt'; torch.save(mlp().state_dict(), f)
    elif case == 'bad_kwargs': f, kw = good, dict(granularity='kernal')
    elif case == 'folder_without_ticket': f = tmp_path/'empty_folder'; f.mkdir()
    before = snapshot(m)
    with pytest.raises((ValueError, FileNotFoundError), match=match): load_ticket(f, m, **kw)
    assert_unchanged(m, before)

def test_random_criteria_recorded_by_registry_name(tmp_path):
    from lottery_nb.criteria import get_criteria
    m = mlp(); sp = Sparsifier(m, criteria='random').prune(30)
    name = read_ticket(save_ticket(tmp_path/'t.safetensors', sp))['meta']['criteria']
    assert name == 'random' and get_criteria(name) is sp.criteria

def _run_rows(seeds=(0, 1, 2), rounds=2):
    "A results table as find_ticket returns it (the columns the card reads): seed s adds s²/100, so seed 1 is not the mean"
    import pandas as pd
    rows = [dict(round=0, pct_remaining=100., arm='ticket', seed=s, es_acc=0.90 + s*s/100) for s in seeds]
    rows += [dict(round=r, pct_remaining=100 * 0.8**r, arm=a, seed=s, es_acc=0.80 + r/100 + s*s/100 + (a == 'ticket')/10)
             for r in range(1, rounds+1) for a in ('ticket', 'random_mask', 'random_reinit') for s in seeds]
    return pd.DataFrame(rows)

@pytest.mark.parametrize('case', ['mlp', 'filter'])
def test_model_card_follows_the_hub_conventions(tmp_path, case):
    "The README of a ticket folder, as the command writes it, read back by huggingface_hub's own parser, field by field"
    hub = pytest.importorskip('huggingface_hub')
    from lottery_nb.all import write_ticket, write_card
    make, kw = CASES[case]
    m = make(); sp, done = trained(m, kw)
    image = case == 'filter'
    meta = dict(seed=1, round=2, settings={'prune_pct': 20, 'rewind': '0', 'epochs': 2, 'lr': 0.01, 'learner': {'data': {'sizes': [90, 10, 50], 'bs': 16}}},
                found={'steps': 40, 'seconds': 1.0}, trained_cost={'steps': 20, 'seconds': 0.5}, build='your own',
                input_shape=[3, 8, 8] if image else [10], n_seeds=3, results={'dense': {'mean': 0.91, 'std': 0.01}},
                command='lottery_nb --dataset digits --rounds 2')
    folder = tmp_path/'ticket'
    write_ticket(folder/'ticket.safetensors', m, get_masks(m), sp.rewind_state, done, **meta)
    # the folder alone: the header's facts, no model-index (the ticket's own accuracy is in the results table)
    write_card(folder)
    d = hub.ModelCard.load(folder/'README.md').data
    assert (d.library_name, d.license, d.metrics) == ('lottery_nb', 'apache-2.0', ['accuracy'])
    assert {'pruning', 'lottery-ticket-hypothesis', 'fastai'} <= set(d.tags) and d.eval_results is None
    assert 'lottery_nb --dataset digits --rounds 2' in (folder/'README.md').read_text()
    # with the run's results and the dataset, as the command passes them
    write_card(folder, results=_run_rows(), command='lottery_nb --dataset digits --rounds 2 --seeds 0 1 2', dataset='digits')
    card = hub.ModelCard.load(folder/'README.md')
    d, text = card.data, card.text
    assert (d.library_name, d.license, d.datasets, d.metrics) == ('lottery_nb', 'apache-2.0', ['digits'], ['accuracy'])
    e, = d.eval_results
    assert (e.task_type, e.dataset_type, e.dataset_name, e.dataset_split, e.metric_type) == \
           ('image-classification' if image else 'sequence-classification', 'digits', 'digits', 'test', 'accuracy')
    assert e.metric_value == pytest.approx(0.80 + 0.02 + 0.01 + 0.1)   # seed 1's ticket in round 2: its own accuracy, not a mean
    for s in ['Intended use', 'Limitations', 'Training data', 'Training procedure', 'Evaluation']: assert f'\n## {s}\n' in text, s
    assert '| arm | weights remaining | this ticket (seed 1) | mean ± std over 3 seeds |' in text
    assert '| dense | 100% (dense: sparsity 0) | 0.910 | 0.917 ± 0.021 |' in text   # dense as dense, not at the ticket's sparsity
    assert '| ticket | 64.0% | 0.930 | 0.937 ± 0.021 |' in text   # seed 1's own beside the mean over seeds
    assert '```bash\nlottery_nb --dataset digits --rounds 2 --seeds 0 1 2\n```' in text
    assert '- learner:\n  - data:\n    - sizes: 90, 10, 50' in text and "{'" not in text   # settings as a nested list, no dict repr
    assert 'digits: 90 training, 10 validation, 50 test samples, in batches of 16.' in text
