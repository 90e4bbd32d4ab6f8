"""fasterai 0.4.1, the peer: never a dependency. It is installed into bench/.peers on first use with
`pip install --no-deps --target bench/.peers fasterai==0.4.1 einops torch-pruning`, and skipped with the reason where
that fails."""
import contextlib, io, subprocess, sys
from pathlib import Path

PEERS = Path(__file__).resolve().parent/'.peers'

def load_fasterai():
    "fasterai 0.4.1 from bench/.peers (installed there on first use), or `None` with the reason"
    if not (PEERS/'fasterai').exists():
        r = subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target', str(PEERS),
                            'fasterai==0.4.1', 'einops', 'torch-pruning'], capture_output=True, text=True)
        if r.returncode: return None, f'pip could not install fasterai 0.4.1: {r.stderr.strip().splitlines()[-1:]}'
    sys.path.insert(0, str(PEERS))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from fasterai.sparse.sparsifier import Sparsifier as FSparsifier
            from fasterai.sparse.sparsify_callback import SparsifyCallback as FCallback
            from fasterai.core.criteria import large_final as f_large_final
            from fasterai.core.schedule import Schedule, sched_oneshot
        import fasterai
    except Exception as e: return None, f'fasterai 0.4.1 did not import: {type(e).__name__}: {e}'
    finally: sys.path.remove(str(PEERS))
    return dict(Sparsifier=FSparsifier, Callback=FCallback, large_final=f_large_final, Schedule=Schedule,
                sched_oneshot=sched_oneshot, version=getattr(fasterai, '__version__', '0.4.1')), None
