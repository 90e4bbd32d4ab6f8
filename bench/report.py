"""The README writer: the machine, the command and the summary table above the sections' tables, into bench/README.md.
Only a full run replaces it: `--quick` and `--smoke` numbers are too few to stand for the suite."""
import datetime, os, platform
from pathlib import Path
import torch
import lottery_nb
from .timing import md_table

README = Path(__file__).resolve().parent/'README.md'

NOTES = """## How to read these tables

- A ratio's interval comes from resampling the reps (2,000 bootstrap draws of the median). Where the A/A interval
  is wide, so is every other: that is this machine's noise, not the arm's cost.
- The mask op column is the arithmetic cost of masking; anything an arm spends beyond plain + mask op is
  bookkeeping: fastai's callback dispatch, hooks, or a Python loop over the layers.
- Section 4's split wraps functions, so time in code it does not name (building data, models, copying states,
  tables and plots) is "other".
"""

def machine():
    "The CPU, cores, GPU and versions, in one line"
    cpu = platform.processor() or platform.machine()
    try: cpu = next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except Exception: pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'
    import fastai
    return (f'{cpu}, {os.cpu_count()} cores, {gpu}; Python {platform.python_version()}, '
            f'torch {torch.__version__}, fastai {fastai.__version__}, lottery_nb {lottery_nb.__version__}')

def head(a, cmd, seconds, summary_rows):
    "The README's top: the command, the date, the machine and the summary table"
    peer = f", fasterai {a.fai['version']}" if a.fai else ', fasterai not available'
    return '\n'.join(['# Benchmarks', '', f'`{cmd.strip()}`, {datetime.date.today().isoformat()}, {seconds:.0f} s in all.', '',
            f'Machine: {machine()}{peer}. Timed comparisons (sections 1 and 4, except the command\'s split) ran on {a.threads} torch '
            f'thread(s), the rest on torch\'s default {a.default_threads}.', '', '## Summary', '',
            md_table(['goal or figure', 'measured', 'met'], summary_rows), ''])

def writes(a):
    "Whether this run replaces bench/README.md: a full run, unless told `--no-write`"
    return not (a.no_write or a.quick or a.smoke)

def write(top, texts):
    "bench/README.md: the top, each section's markdown, and how to read them"
    README.write_text('\n'.join([top] + [t + '\n' for t in texts]) + '\n' + NOTES)
