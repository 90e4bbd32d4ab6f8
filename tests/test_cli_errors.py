"""A property test of the command line's bad input: `.npz` files and image folders with random defects (shapes,
dtypes, labels, NaN, corrupt files, sizes, classes, folders), and output paths that cannot be written. For every case:
exit status 2, one line on stderr, no traceback, no results folder made or changed, and no training started."""
import contextlib, io, json, os
from pathlib import Path
import numpy as np, pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from fastai.learner import Learner
from lottery_nb.cli import main

CASES = []   # what ran, for the count in the report

def run_cli(args, out):
    "main() in this process, with training forbidden: (exit status, stderr lines, the folder before and after)"
    snap = lambda: sorted(str(p.relative_to(out)) for p in out.rglob('*')) if out.exists() else None
    before, err = snap(), io.StringIO()
    real = Learner.fit
    def no_fit(*a, **k): raise AssertionError('training started before the error')
    Learner.fit = no_fit
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main([*args, '--out', str(out), '--rounds', '1', '--epochs', '1', '--seeds', '0', '--no-progress'])
    finally: Learner.fit = real
    return code, err.getvalue().strip().splitlines(), before, snap()

def check(args, out, kind):
    code, lines, before, after = run_cli(args, out)
    CASES.append(kind)
    assert code == 2, (kind, code, lines)
    assert len(lines) == 1 and 'Traceback' not in lines[0] and lines[0].startswith('lottery_nb: error: '), (kind, lines)
    assert before == after, (kind, 'the results folder was made or changed', before, after)

def clean_arrays(rng, n=60, images=False):
    x = rng.random((n, 1, 8, 8) if images else (n, 12)).astype('float32')
    y = np.arange(n) % 3
    return dict(x_train=x, y_train=y, x_test=x[:20].copy(), y_test=y[:20].copy())

NPZ_DEFECTS = {
    'x 1-d': lambda d, r: d.update(x_train=d['x_train'].reshape(-1)[:60]),
    'fewer labels': lambda d, r: d.update(y_train=d['y_train'][: r.integers(1, 59)]),
    'more labels': lambda d, r: d.update(y_train=np.concatenate([d['y_train'], d['y_train'][:5]])),
    'empty x_train': lambda d, r: d.update(x_train=d['x_train'][:0], y_train=d['y_train'][:0]),
    'NaN': lambda d, r: d['x_train'].__setitem__((r.integers(0, 60), 0), np.nan),
    'inf': lambda d, r: d['x_test'].__setitem__((r.integers(0, 20), 0), np.inf),
    'float labels': lambda d, r: d.update(y_train=d['y_train'].astype('float32')),
    'string labels': lambda d, r: d.update(y_train=d['y_train'].astype(str)),
    'string inputs': lambda d, r: d.update(x_train=d['x_train'].astype(str)),
    'object array': lambda d, r: d.update(y_test=np.array([[1], [1, 2]] * 10, dtype=object)),
    'complex inputs': lambda d, r: d.update(x_train=d['x_train'].astype('complex64')),
    'one class': lambda d, r: d.update(y_train=np.zeros(60, int)),
    'test class unseen': lambda d, r: d.update(y_test=np.full(20, 7)),
    'negative label': lambda d, r: d['y_train'].__setitem__(r.integers(0, 60), -1),
    'missing array': lambda d, r: d.pop(['x_test', 'y_test', 'x_train'][r.integers(0, 3)]),
    'test shape differs': lambda d, r: d.update(x_test=np.zeros((20, 5), 'float32')),
}

@settings(max_examples=48, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(NPZ_DEFECTS)), seed=st.integers(0, 10**6))
def test_npz_defects(tmp_path, kind, seed):
    rng = np.random.default_rng(seed)
    d = clean_arrays(rng); NPZ_DEFECTS[kind](d, rng)
    f = tmp_path/f'{kind}-{seed}.npz'
    np.savez(f, **d) if kind != 'object array' else np.savez(f, **d, allow_pickle=True)
    check(['--dataset', str(f)], tmp_path/f'out-{seed}', f'npz: {kind}')

def channels_last(tmp_path):
    d = clean_arrays(np.random.default_rng(0), images=True)
    d['x_train'], d['x_test'] = (a.transpose(0, 2, 3, 1).repeat(3, -1) for a in (d['x_train'], d['x_test']))
    np.savez(tmp_path/'cl.npz', **d)
    check(['--dataset', str(tmp_path/'cl.npz'), '--model', 'conv2'], tmp_path/'out', 'npz: channels-last images')

def test_channels_last_npz(tmp_path): channels_last(tmp_path)

def make_folder(root, rng, n_train=30, classes=('a', 'b'), size=8):
    from PIL import Image
    for split, n in (('train', n_train), ('valid', 10)):
        for i in range(n):
            c = classes[i % len(classes)]
            (root/split/c).mkdir(parents=True, exist_ok=True)
            Image.fromarray((rng.random((size, size)) * 255).astype('uint8'), mode='L').save(root/split/c/f'{i}.png')

FOLDER_DEFECTS = {
    'corrupt train image': lambda root, r: (lambda f: f.write_bytes(f.read_bytes()[:40]))(sorted((root/'train').rglob('*.png'))[r.integers(0, 30)]),
    'corrupt valid image': lambda root, r: (lambda f: f.write_bytes(f.read_bytes()[:40]))(sorted((root/'valid').rglob('*.png'))[r.integers(0, 10)]),
    'not an image': lambda root, r: (root/'train'/'a'/'x.png').write_text('hello'),
    'mixed sizes': lambda root, r: __import__('PIL.Image').Image.new('L', (int(r.integers(9, 20)),) * 2).save(root/'train'/'b'/'big.png'),
    'valid class unseen': lambda root, r: __import__('PIL.Image').Image.new('L', (8, 8)).save((lambda d: (d.mkdir(), d)[1])(root/'valid'/'zebra')/'z.png'),
    'no valid folder': lambda root, r: __import__('shutil').rmtree(root/'valid'),
    'empty train': lambda root, r: [f.unlink() for f in (root/'train').rglob('*.png')],
}

@settings(max_examples=21, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(FOLDER_DEFECTS)), seed=st.integers(0, 10**6))
def test_image_folder_defects(tmp_path, kind, seed):
    rng = np.random.default_rng(seed); root = tmp_path/f'imgs-{seed}'
    make_folder(root, rng); FOLDER_DEFECTS[kind](root, rng)
    check(['--dataset', str(root), '--bs', '8', '--model', 'lenet300'], tmp_path/f'out-{seed}', f'folder: {kind}')

@pytest.mark.parametrize('kind', ['one class', 'fewer images than bs'])
def test_image_folder_shape_of_data(tmp_path, kind):
    rng = np.random.default_rng(0); root = tmp_path/'imgs'
    make_folder(root, rng, classes=('a',) if kind == 'one class' else ('a', 'b'))
    check(['--dataset', str(root), '--bs', '64' if kind != 'one class' else '8', '--model', 'lenet300'], tmp_path/'out', f'folder: {kind}')

def test_mixed_sizes_train_with_size(tmp_path):
    "The fix the message gives works: --size resizes, and the run starts (here, training is what stops it)"
    from PIL import Image
    rng = np.random.default_rng(0); root = tmp_path/'imgs'; make_folder(root, rng)
    Image.new('L', (12, 12)).save(root/'train'/'b'/'big.png')
    code, lines, _, _ = run_cli(['--dataset', str(root), '--bs', '8', '--model', 'lenet300'], tmp_path/'o1')
    assert code == 2 and 'give a size' in lines[0]
    from lottery_nb.lottery import TaskFailed
    with pytest.raises(TaskFailed, match='AssertionError: training started'):   # the fit's error, as the runner reports a failed task
        run_cli(['--dataset', str(root), '--bs', '8', '--model', 'lenet300', '--size', '8'], tmp_path/'o2')

@pytest.mark.parametrize('kind', ['out is a file', 'out inside a file', 'size without a folder', 'settings differ'])
def test_output_problems(tmp_path, kind):
    out = tmp_path/'out'
    if kind == 'out is a file': out.write_text('mine'); args = []
    elif kind == 'out inside a file': (tmp_path/'f').write_text('x'); out = tmp_path/'f'/'out'; args = []
    elif kind == 'size without a folder': args = ['--size', '16']
    else:
        out.mkdir(); (out/'settings.json').write_text(json.dumps({'lottery_nb': 'other', 'epochs': 3})); args = []
    check(args, out, f'out: {kind}')

def test_report_count():
    "Run last: how many bad inputs the tests above tried"
    print(f'\n{len(CASES)} bad-input cases through the command line, {len(set(CASES))} kinds')
    assert len(CASES) >= 60 and len(set(CASES)) >= 25, (len(CASES), sorted(set(CASES)))
