__version__ = "0.0.1"

import warnings as _warnings
with _warnings.catch_warnings():
    # fastai's import calls `torch.jit.script`, which torch deprecates: a notice for fastai, that a user of lottery_nb
    # cannot act on. Silenced for that import only; the user's own calls to torch.jit.script still warn.
    _warnings.filterwarnings('ignore', message=r'`torch\.jit\.script` is deprecated', category=FutureWarning)
    import fastai.layers
del _warnings
