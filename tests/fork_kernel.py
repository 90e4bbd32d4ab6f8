"""A Jupyter kernel that starts warm: forked from a process (the zygote) that has imported what a page imports (torch,
fastai, lottery_nb, ipykernel, matplotlib) and run nothing else. Each kernel is a new process with an empty namespace,
its own pid, working folder, environment and standard streams, as a kernel started from scratch is; only `sys.modules`
is warm, which saves the 3-4 s of CPU that importing torch and fastai costs each of the 37 pages here.

    python fork_kernel.py serve NAME                       # the zygote: imports, says `ready`, forks a kernel a request
    python fork_kernel.py launch NAME -f CONNECTION_FILE   # a kernel spec's argv: asks the zygote for a kernel, stands for it

NAME is the zygote's socket, in Linux's abstract namespace (no file, no limit on the length of a folder's path).

The launcher is the process Jupyter starts, signals and waits on: it passes on its folder, environment and standard
streams, forwards SIGINT (an interrupt), SIGTERM and SIGHUP to the kernel and ends when the kernel ends; a kernel whose
launcher is gone (SIGKILLed by Jupyter's shutdown) ends too. Standard library only, plus ipykernel in the zygote."""
import json, os, signal, socket, sys, threading, time

PRELOAD = ('torch', 'fastai.vision.all', 'lottery_nb.all', 'matplotlib.pyplot')   # after the kernel's own: ipykernel.kernelapp
INLINE = 'module://matplotlib_inline.backend_inline'   # what ipykernel sets before a page's first import of matplotlib

def _dead(pid):
    "True when `pid` has ended (a zombie included)"
    try:
        with open(f'/proc/{pid}/stat') as f: return f.read().rpartition(')')[2].split()[0] in 'ZX'
    except OSError: return True

def _address(name): return '\0' + name

def serve(name):
    if not os.environ.get('MPLBACKEND'): os.environ['MPLBACKEND'] = INLINE
    import importlib, warnings
    import ipykernel.kernelapp   # what a kernel imports as it starts; then what a page imports, whose side effects on
    base, env = warnings.filters[:], dict(os.environ)   # the warning filters and the environment are put in each kernel
    for m in PRELOAD: importlib.import_module(m)   # in the order a fresh kernel would have them (`_kernel`)
    global IMPORT_ENV, IMPORT_FILTERS
    IMPORT_ENV = {k: v for k, v in os.environ.items() if env.get(k) != v}
    n = warnings.filters.index(base[0]) if base else len(warnings.filters)
    assert warnings.filters[n:n + len(base)] == base, 'the imports removed or reordered warning filters'
    IMPORT_FILTERS = (warnings.filters[:n], warnings.filters[n + len(base):])
    del warnings.filters[:n], warnings.filters[len(base):]; warnings._filters_mutated()
    if threading.active_count() != 1: sys.exit(f'fork_kernel: the imports started threads {threading.enumerate()}: forking is unsafe')
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)   # kernels are reaped as they end: their launchers see them gone
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); srv.bind(_address(name)); srv.listen(64)
    print('ready', flush=True)
    while True:
        conn, _ = srv.accept()
        msg, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        pid = os.fork()
        if pid == 0:
            try:
                srv.close(); conn.close()
                _kernel(json.loads(msg), fds)
            except BaseException:
                import traceback; traceback.print_exc()
                os._exit(1)
            os._exit(0)
        for fd in fds: os.close(fd)
        conn.send(json.dumps({'pid': pid}).encode()); conn.close()

def _kernel(req, fds):
    "In the forked child: become the launcher's kernel, then run it until it shuts down"
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)   # a page's subprocesses are waited on as usual
    os.setpgid(0, 0)
    for i, fd in enumerate(fds): os.dup2(fd, i); os.close(fd)
    os.chdir(req['cwd'])
    os.environ.clear(); os.environ.update(req['env']); os.environ.update(IMPORT_ENV)
    import importlib.util
    sys.argv = [importlib.util.find_spec('ipykernel_launcher').origin, *req['argv']]   # as `python -m ipykernel_launcher` has it
    del sys.path[0]   # the zygote's folder; ipykernel_launcher removes the working folder `-m` puts there
    import random, numpy as np
    random.seed(); np.random.seed()   # seeded from the OS as in a new process, not copies of the zygote's states
    def watch(launcher=req['launcher']):
        while not _dead(launcher): time.sleep(0.2)
        os._exit(1)
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
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda n, _: os.kill(pid, n) if not _dead(pid) else None)
    while not _dead(pid): time.sleep(0.05)

if __name__ == '__main__':
    cmd, name, *rest = sys.argv[1:]
    serve(name) if cmd == 'serve' else launch(name, rest)
