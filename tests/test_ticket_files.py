"""Loading a ticket never runs code from the file, and a bad file leaves the model bit for bit unchanged."""
import os, pickle
from pathlib import Path
import pytest, torch
from torch import nn
from lottery_nb.all import Sparsifier, save_ticket, load_ticket, masked_layers

def mlp(): torch.manual_seed(0); return nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 3))

class Payload:
    "What an attacker pickles: unpickling calls os.system"
    def __init__(self, cmd): self.cmd = cmd
    def __reduce__(self): return (os.system, (self.cmd,))

@pytest.fixture
def ticket(tmp_path):
    m = mlp(); sp = Sparsifier(m, method='global').prune(60).reset()
    return save_ticket(tmp_path/'ticket.pt', sp, round=1)

def snapshot(m): return {k: v.clone() for k, v in m.state_dict().items()}

def assert_unchanged(m, before):
    assert masked_layers(m) == {}
    sd = m.state_dict()
    assert sd.keys() == before.keys() and all(torch.equal(sd[k], before[k]) for k in sd)

@pytest.mark.parametrize('where', ['masks', 'meta', 'top'])
def test_malicious_file_runs_nothing(tmp_path, ticket, where):
    marker = tmp_path/'owned'
    t = torch.load(ticket, weights_only=True)
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

@pytest.mark.parametrize('case, match', [
    ('empty', 'is empty'), ('truncated', 'truncated'), ('garbage', 'not a readable ticket'),
    ('wrong_arch', "layer '2' does not match"), ('other_names', 'which this model lacks'),
    ('mask_shape', "mask for layer '0' has shape"), ('state_dict', "needs 'masks'"), ('bad_kwargs', "'kernel'")])
def test_bad_file_leaves_model_unchanged(tmp_path, ticket, case, match):
    f, kw = tmp_path/'bad.pt', {}
    t = torch.load(ticket, weights_only=True)
    m = mlp()
    if case == 'empty': f.write_bytes(b'')
    elif case == 'truncated': f.write_bytes(ticket.read_bytes()[:len(ticket.read_bytes())//2])
    elif case == 'garbage': f.write_bytes(os.urandom(300))
    elif case == 'wrong_arch': f = ticket; m = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 4))
    elif case == 'other_names': f = ticket; m = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Sequential(nn.Linear(20, 3)))
    elif case == 'mask_shape': t['masks']['0'] = torch.ones(5, 5, dtype=torch.bool); torch.save(t, f)
    elif case == 'state_dict': torch.save(mlp().state_dict(), f)
    elif case == 'bad_kwargs': f, kw = ticket, dict(granularity='kernal')
    before = snapshot(m)
    with pytest.raises(ValueError, match=match): load_ticket(f, m, **kw)
    assert_unchanged(m, before)

def test_ticket_from_older_version_loads(tmp_path):
    "save_ticket before this change wrote torch.save(dict(masks, rewind, meta)) with the function's name as criteria"
    m = mlp(); sp = Sparsifier(m).prune(50).reset()
    old = dict(masks={n: v.clone() for n, v in [(n, l.lth_mask) for n, l in masked_layers(m).items()]},
               rewind={k: v.clone() for k, v in sp.rewind_state.items()},
               meta=dict(sparsity=sp.pruned_pct, criteria='random_scores', granularity='weight', version='0.0.1', round=3))
    torch.save(old, tmp_path/'old.pt')
    m2 = mlp(); sp2 = load_ticket(tmp_path/'old.pt', m2)
    assert sp2.meta['round'] == 3
    for (k, a), b in zip(m.state_dict().items(), m2.state_dict().values()): assert torch.equal(a, b), k

def test_random_criteria_recorded_by_registry_name(tmp_path):
    from lottery_nb.criteria import get_criteria
    m = mlp(); sp = Sparsifier(m, criteria='random').prune(30)
    f = save_ticket(tmp_path/'t.pt', sp)
    name = torch.load(f, weights_only=True)['meta']['criteria']
    assert name == 'random' and get_criteria(name) is sp.criteria
