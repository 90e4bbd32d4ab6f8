"""A Jupyter kernel that starts warm: forked from a process (the zygote) that has imported what a page imports (torch,
fastai, lottery_nb, matplotlib) and run nothing else. Each kernel is a new process with an empty namespace, its own
pid, session, working folder, environment and standard streams, as a kernel started from scratch is; only
`sys.modules` is warm, which saves the 3-4 s of CPU that importing torch and fastai costs each page here.
What a fork cannot renew: the string-hash seed (PYTHONHASHSEED) is the zygote's, so set order is the same in every
kernel of a session (a page must not depend on it either way).

    python fork_kernel.py serve NAME                       # the zygote: imports, says `ready`, forks a kernel a request
    python fork_kernel.py launch NAME -f CONNECTION_FILE   # a kernel spec's argv: asks the zygote for a kernel, stands for it

NAME is the zygote's socket, in Linux's abstract namespace (no file, no limit on the length of a folder's path); it
serves this user only. The launcher is the process Jupyter starts, signals and waits on: it passes on its folder,
environment and standard streams, forwards SIGINT (an interrupt), SIGTERM and SIGHUP to the kernel's process group and
ends when the kernel ends. A kernel ends, with its process group, when its launcher is gone (SIGKILLed by Jupyter's
shutdown) or the Jupyter client that started it is; the zygote ends when the process that started it does.
Standard library only (and tests/fork_job.py's reading of a request), plus ipykernel in the zygote."""
import itertools, json, os, select, signal, socket, sys, threading
from fork_job import read_request, exit_code   # this folder: the script's own

PRELOAD = ('torch', 'fastai.vision.all', 'lottery_nb.all', 'matplotlib.pyplot')   # after the kernel's own: ipykernel.kernelapp
INLINE = 'module://matplotlib_inline.backend_inline'   # what ipykernel sets before a page's first import of matplotlib

def _address(name): return '\0' + name

def _wait_end(pidfd, timeout=None):
    "Wait until the process of `pidfd` has ended (True), or `timeout` seconds (False)"
    return bool(select.select([pidfd], [], [], timeout)[0])

def serve(name):
    if not os.environ.get('MPLBACKEND'): os.environ['MPLBACKEND'] = INLINE
    import importlib, warnings
    import ipykernel.kernelapp   # what a kernel imports as it starts; then what a page imports, whose side effects on
    base, env = warnings.filters[:], dict(os.environ)   # the warning filters and the environment are put in each kernel
    named = threading._counter()   # the number the next unnamed thread takes ("Thread-N"): a kernel names its own first,
    for m in PRELOAD: importlib.import_module(m)   # in the order a fresh kernel would have them (`_kernel`)
    threading._counter = itertools.count(named).__next__   # and an import may name one (fastai's first one on a machine)
    global IMPORT_ENV, IMPORT_FILTERS
    IMPORT_ENV = {k: v for k, v in os.environ.items() if env.get(k) != v}
    n = warnings.filters.index(base[0]) if base else len(warnings.filters)
    assert warnings.filters[n:n + len(base)] == base, 'the imports removed or reordered warning filters'
    IMPORT_FILTERS = (warnings.filters[:n], warnings.filters[n + len(base):])
    del warnings.filters[:n], warnings.filters[len(base):]; warnings._filters_mutated()
    for t in threading.enumerate():   # a thread an import started and cancelled (matplotlib's font-cache notice, a Timer,
        if t is not threading.current_thread(): t.join(5)   # on a machine's first import) may not have ended yet
    tasks = os.listdir('/proc/self/task')   # native threads too (an OpenMP pool): a fork copies only the calling one
    if len(tasks) != 1: sys.exit(f'fork_kernel: the imports started {len(tasks)} threads: forking is unsafe')
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)   # kernels are reaped as they end: their launchers see them gone
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); srv.bind(_address(name)); srv.listen(64)
    srv.settimeout(1)
    parent = os.getppid()
    print('ready', flush=True)
    null = os.open(os.devnull, os.O_WRONLY); os.dup2(null, 1); os.close(null)   # nobody reads that pipe from here on
    while os.getppid() == parent:   # the tests' process is gone: so is the zygote
        try: conn, _ = srv.accept()
        except TimeoutError: continue
        try: _request(conn, srv)
        except OSError as e: print(f'fork_kernel: a request failed: {e!r}', file=sys.stderr, flush=True)   # the next one may not
        finally: conn.close()

def _request(conn, srv):
    "Fork a kernel for the launcher at `conn`, and tell it the kernel's pid"
    req, fds = read_request(conn, 'a kernel')
    pid = os.fork()
    if pid == 0:   # the kernel: it never returns to the zygote's loop
        code = 1
        try:
            srv.close(); conn.close()
            _kernel(req, fds); code = 0
        except SystemExit as e: code = exit_code(e)
        except BaseException:
            import traceback; traceback.print_exc()
        finally:
            try:
                import atexit; atexit._run_exitfuncs()   # as a process ending normally runs them
            finally: os._exit(code)
    for fd in fds: os.close(fd)
    conn.send(json.dumps({'pid': pid}).encode())

def _kernel(req, fds):
    "In the forked child: become the launcher's kernel, then run it until it shuts down"
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)   # a page's subprocesses are waited on as usual
    os.setsid()   # a session and process group of its own, as Jupyter starts a kernel (`start_new_session`)
    for i, fd in enumerate(fds): os.dup2(fd, i); os.close(fd)
    os.chdir(req['cwd'])
    os.environ.clear(); os.environ.update(req['env']); os.environ.update(IMPORT_ENV)
    import importlib.util
    sys.argv = [importlib.util.find_spec('ipykernel_launcher').origin, *req['argv']]   # as `python -m ipykernel_launcher` has it
    del sys.path[0]   # the zygote's folder; ipykernel_launcher removes the working folder `-m` puts there
    import random, numpy as np, torch
    random.seed(); np.random.seed(); torch.seed()   # seeded from the OS as in a new process, not copies of the zygote's states
    # A cold kernel ends when the Jupyter client that started it does (ipykernel's parent poller, which cannot tell here);
    # this one also when its launcher does: it ends with its process group, as Jupyter kills a kernel's
    watched = [os.pidfd_open(req['launcher'])] + [os.pidfd_open(int(p)) for p in [os.environ.get('JPY_PARENT_PID')] if p]
    def watch():
        select.select(watched, [], [])
        os.killpg(0, signal.SIGKILL)
    threading.Thread(target=watch, daemon=True, name='launcher watch').start()
    from ipykernel.kernelapp import IPKernelApp
    # two settings ipykernel reads from the environment when it is imported, which the zygote did before Jupyter set them
    env = {k: int(os.environ.get(f'JPY_{k.upper()}') or 0) for k in ('parent_pid', 'interrupt_event')}
    app = IPKernelApp.instance()   # what `IPKernelApp.launch_instance` does, with the imports' warning filters put
    app.initialize([*sys.argv[1:], f"--IPKernelApp.parent_handle={env['parent_pid']}",   # where a page's imports put them
                    f"--IPKernelApp.interrupt={env['interrupt_event']}"])
    import warnings
    front, back = IMPORT_FILTERS
    warnings.filters[:0] = front; warnings.filters.extend(back); warnings._filters_mutated()
    app.start()

def launch(name, argv):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try: s.connect(_address(name))
    except OSError as e: sys.exit(f'fork_kernel: no zygote answers at {name} ({e})')
    req = dict(cwd=os.getcwd(), env=dict(os.environ), argv=argv, launcher=os.getpid())
    socket.send_fds(s, [json.dumps(req).encode()], [0, 1, 2])
    reply = s.recv(4096)
    if not reply: sys.exit(f'fork_kernel: the zygote at {name} started no kernel')
    pid = json.loads(reply)['pid']
    try: pidfd = os.pidfd_open(pid)
    except ProcessLookupError: sys.exit('fork_kernel: the kernel ended as it started')
    def forward(n, _):
        try: os.killpg(pid, n)   # the kernel leads its process group: its own subprocesses get the signal too
        except ProcessLookupError: pass
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP): signal.signal(sig, forward)
    _wait_end(pidfd)

if __name__ == '__main__':
    cmd, name, *rest = sys.argv[1:]
    serve(name) if cmd == 'serve' else launch(name, rest)
