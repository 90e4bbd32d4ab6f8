"""The sections of `python bench/run.py`, by number. Each module has `run(a)`, which returns its markdown and its
results, and `summary(res)`, which returns its rows of the README's summary table."""
from . import overhead, prune, memory, ticket

SECTIONS = {1: overhead, 2: prune, 3: memory, 4: ticket}
