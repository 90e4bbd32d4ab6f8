"""Test jobs that start warm: `python SCRIPT ARGS` or `python -c CODE ARGS` forked from a process (the zygote) that has
imported torch, fastai and lottery_nb and run nothing else, instead of a new interpreter importing them (3-4 s of CPU
a job here). The tests of results folders start over 20 jobs that share a folder, SIGTERM, SIGKILL and SIGSTOP them at
random moments and read their exit codes: each job is still a process of its own, with its own pid, working folder,
environment, standard streams, random states and (`host=`) host name, signalled and killed like any other.
`Job` is used as `subprocess.Popen` is: `pid`, `poll`, `wait`, `communicate`, `send_signal`, `kill`, `returncode`
(minus N for a job ended by signal N); its `stdout` and `stderr` are text pipes, its stdin is /dev/null.
What a fork cannot renew: the string-hash seed (PYTHONHASHSEED) is the zygote's; the job's parent process is the
zygote (which reaps it and passes its exit status on); its command line (`ps`, /proc/PID/cmdline, `sys.orig_argv`) is
the zygote's, `fork_job.py serve NAME`, while `sys.argv` is the job's; what the zygote imported is imported already,
and what those imports print (torch's notice as fastai imports) was printed once, by the zygote; and the variables
Python and torch read as they start (PYTHON*, OMP_*, MKL_*, KMP_*) must be the zygote's: a job asking for others is
refused. A job's environment is the zygote's unless `job(env=...)` gives one (Popen's default is the caller's). `test_a_forked_job_is_a_fresh_process`
compares a job with a new interpreter.

    with Zygote(env) as z: p = z.job([script, *args]); out, err = p.communicate(timeout=600)

Standard library only, plus what the zygote imports (PRELOAD); the zygote ends when the process that started it does."""
import importlib, json, os, select, signal, socket, struct, subprocess, sys, time, traceback

PRELOAD = ('torch', 'fastai.basics', 'lottery_nb.all', 'lottery_nb.cli')
STARTUP = ('PYTHON', 'OMP_', 'MKL_', 'KMP_', 'OPENBLAS_', 'TORCH_', 'CUDA_', 'MPLBACKEND')   # read as a process starts
# or as torch and matplotlib are imported: a job must have the zygote's
READY_S = 300   # the zygote's imports take 4 s here
CLONE_NEWUTS = 0x04000000
INHERITED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)   # an ignored one stays ignored in a child

def _address(name): return '\0' + name   # Linux's abstract namespace: no file, and only this user is served

def _startup(env): return {k: v for k, v in env.items() if k.startswith(STARTUP)}

def serve(name, parent):
    "Import PRELOAD, say `ready`, then fork the jobs asked for until process `parent` (the tests') is gone or SIGTERM comes"
    global START_ENV, IMPORT_ENV
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)   # jobs are reaped here, their statuses read (not ignored, whatever was inherited)
    START_ENV = dict(os.environ)
    for m in PRELOAD: importlib.import_module(m)
    IMPORT_ENV = {k: v for k, v in os.environ.items() if START_ENV.get(k) != v}   # what the imports set (torch: KMP_*), as in a job
    tasks = os.listdir('/proc/self/task')   # a fork copies the calling thread only: a pool started by an import would be lost
    if len(tasks) != 1: sys.exit(f'fork_job: the imports started {len(tasks)} threads: forking is unsafe')
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); srv.bind(_address(name)); srv.listen(64)
    jobs = {}   # {pidfd: (pid, the connection of whoever asked for it)}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))   # `Zygote.__exit__`: its jobs end with it (below)
    print('ready', flush=True)
    null = os.open(os.devnull, os.O_WRONLY); os.dup2(null, 1); os.close(null)   # nobody reads that pipe from here on
    try:
        while os.getppid() == parent:   # the tests' process is gone (even during the imports above): so is the zygote
            for fd in select.select([srv, *jobs], [], [], 1)[0]:
                if fd is srv: _accept(srv, jobs)
                else: _reap(fd, jobs)
    finally:   # no job outlives its zygote: a test that failed or was stopped leaves none writing (or stopped)
        for pid, _ in jobs.values():
            try: os.kill(pid, signal.SIGKILL)
            except ProcessLookupError: pass

def _accept(srv, jobs):
    "One request: a job forked and registered, or a refusal; whatever goes wrong is logged, and the zygote goes on"
    conn, _ = srv.accept()
    try:
        job = _request(conn, srv, jobs)
        if job: jobs[job[0]] = job[1:]
        else: conn.close()
    except Exception as e:
        print(f'fork_job: a request failed: {e!r}', file=sys.stderr, flush=True); conn.close()

def _reap(pidfd, jobs):
    "A job ended: reaped here, its exit status passed on to whoever asked for it (who is told nothing if that fails)"
    pid, conn = jobs.pop(pidfd); os.close(pidfd)
    try:
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        conn.send(json.dumps({'returncode': code}).encode())
    except Exception as e: print(f'fork_job: the exit status of job {pid} was not passed on: {e!r}', file=sys.stderr, flush=True)
    finally: conn.close()

def read_request(conn, what):
    "The request on `conn` (from a process of this user only): its JSON and the 3 standard streams it passes (also fork_kernel.py's)"
    conn.settimeout(10)
    uid = struct.unpack('3i', conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize('3i')))[1]
    if uid != os.getuid(): raise PermissionError(f'a process of user {uid} asked for {what}')
    msg, fds, flags, _ = socket.recv_fds(conn, 1 << 20, 3)
    try:
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or len(fds) != 3:
            raise OSError(f'a truncated request ({len(msg)} bytes, {len(fds)} file descriptors)')
        return json.loads(msg), fds
    except BaseException:
        for fd in fds: os.close(fd)
        raise

def _request(conn, srv, jobs):
    "Fork the job `conn` asks for; return (pidfd, pid, conn), or None once the refusal is sent"
    req, fds = read_request(conn, 'a job')
    differ = {k: (req['env'].get(k), START_ENV.get(k)) for k in sorted(_startup(req['env']).keys() | _startup(START_ENV).keys())
              if req['env'].get(k) != START_ENV.get(k)}
    if differ:
        for fd in fds: os.close(fd)
        said = '; '.join(f'{k}: {v!r} in the job, {z!r} in the zygote' for k, (v, z) in differ.items())   # None: unset
        conn.send(json.dumps({'error': f'the job\'s environment differs from the zygote\'s in what a process reads as it '
                                       f'starts ({said}): start a Zygote(env) whose env has the job\'s values'}).encode())
        return None
    if not os.path.isdir(req['cwd']):   # as Popen raises it, in the caller
        for fd in fds: os.close(fd)
        conn.send(json.dumps({'error': f"[Errno 2] No such file or directory: {req['cwd']!r}", 'missing': req['cwd']}).encode())
        return None
    sys.stdout.flush(); sys.stderr.flush()
    try: pid = os.fork()
    except OSError:
        for fd in fds: os.close(fd)
        raise
    if pid == 0: _job(req, fds, [srv, conn, *(c for _, c in jobs.values())], list(jobs))   # never returns
    for fd in fds: os.close(fd)
    pidfd = None
    try:
        pidfd = os.pidfd_open(pid)   # the job is not reaped before this: only this process reaps it
        socket.send_fds(conn, [json.dumps({'pid': pid}).encode()], [pidfd])   # the caller signals it through it: never a reused pid
    except BaseException:   # nobody would reap or own it: it ends here, unseen
        os.kill(pid, signal.SIGKILL); os.waitpid(pid, 0)
        if pidfd is not None: os.close(pidfd)
        raise
    return pidfd, pid, conn

def _job(req, fds, socks, pidfds):
    "In the forked child: become `python ARGS` as a new interpreter would run it, and end as it would"
    code = 1
    try:
        for s in socks: s.close()
        for fd in pidfds: os.close(fd)
        for sig in INHERITED:   # as a new interpreter has them: ignored where the asking process ignores them (exec keeps
            signal.signal(sig, signal.SIG_IGN if sig in req['ignored'] else signal.default_int_handler if sig == signal.SIGINT
                          else signal.SIG_DFL)   # that), else Python's own
        signal.signal(signal.SIGCHLD, signal.SIG_DFL); signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        for i, fd in enumerate(fds): os.dup2(fd, i); os.close(fd)
        os.chdir(req['cwd'])
        os.environ.clear(); os.environ.update(req['env']); os.environ.update(IMPORT_ENV)
        if req.get('host'):   # a host of its own, as `unshare --uts` gives (root only)
            import ctypes
            if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWUTS): raise OSError(ctypes.get_errno(), 'unshare(CLONE_NEWUTS) failed (root only)')
            socket.sethostname(req['host'])
        import random, numpy as np, torch
        random.seed(); np.random.seed(); torch.seed()   # seeded from the OS as in a new process, not the zygote's states
        code = _run(req['args'])
    except SystemExit as e: code = exit_code(e)
    except KeyboardInterrupt: traceback.print_exc(); code = -signal.SIGINT
    except BaseException: traceback.print_exc(); code = 1
    finally:
        try:
            import atexit, threading
            threading._shutdown()   # as Python ends: it waits for the threads that are not daemons (an executor's too),
            atexit._run_exitfuncs()   # then runs the exit functions
            for f in (sys.stdout, sys.stderr): f.flush()
        finally:
            if code == -signal.SIGINT:   # what Python does on an uncaught KeyboardInterrupt: it ends by SIGINT
                signal.signal(signal.SIGINT, signal.SIG_DFL); signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
                os.kill(os.getpid(), signal.SIGINT)
            os._exit(code & 0xff)

def exit_code(e):
    "The exit status `sys.exit(e.code)` gives, printing a message that is not a number, as Python does"
    if e.code is None: return 0
    if isinstance(e.code, int): return e.code
    print(e.code, file=sys.stderr); return 1

def _run(args):
    "Run `python ARGS` (a script or `-c CODE`) in this process, as `__main__`"
    import runpy, types
    if args[0] == '-c':
        sys.argv = ['-c', *args[2:]]; sys.path.insert(0, '')
        main = types.ModuleType('__main__'); sys.modules['__main__'] = main
        exec(compile(args[1], '<string>', 'exec'), main.__dict__)
    else:
        if not os.path.isfile(args[0]):   # as `python` says it, with its exit status
            print(f"{sys.executable}: can't open file {os.path.abspath(args[0])!r}: [Errno 2] No such file or directory", file=sys.stderr)
            return 2
        sys.argv = list(args); sys.path.insert(0, os.path.dirname(os.path.abspath(args[0])))
        runpy.run_path(args[0], run_name='__main__')
    return 0

class Job:
    "A job forked by the zygote at `name`, used as `subprocess.Popen(args, stdout=PIPE, stderr=PIPE, text=True)` is"
    def __init__(self, name, args, env=None, cwd=None, host=None):
        self.args, self.returncode, self._out, self._err, self._pidfd = list(args), None, [], [], None
        cwd = str(cwd or os.getcwd())
        if not os.path.isdir(cwd): raise FileNotFoundError(2, 'No such file or directory', cwd)   # as Popen says it
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        out = err = None
        try:
            try: s.connect(_address(name))
            except OSError as e: raise RuntimeError(f'fork_job: no zygote answers at {name} ({e})') from None
            out, err = os.pipe(), os.pipe(); null = os.open(os.devnull, os.O_RDONLY)
            req = dict(args=self.args, env=dict(os.environ if env is None else env), cwd=cwd, host=host,
                       ignored=[int(g) for g in INHERITED if signal.getsignal(g) == signal.SIG_IGN])
            try: socket.send_fds(s, [json.dumps(req).encode()], [null, out[1], err[1]])
            finally:
                for fd in (null, out[1], err[1]): os.close(fd)
            s.settimeout(READY_S)   # the zygote answers at once; a stopped or stuck one is an error, not a hang
            msg, fds, _, _ = socket.recv_fds(s, 1 << 16, 1)
            reply = json.loads(msg or b'{"error": "the zygote ended before it answered"}')
            if 'error' in reply:
                for fd in fds: os.close(fd)
                raise RuntimeError(f"fork_job: no job for {self.args[:2]}: {reply['error']}")
            self.pid, self._pidfd, self._conn = reply['pid'], fds[0], s
            s.settimeout(None)
        except BaseException:
            s.close()
            for fd in (out or ()) + (err or ()):
                try: os.close(fd)
                except OSError: pass   # the write ends, closed above
            raise
        self.stdout, self.stderr = open(out[0]), open(err[0])

    def _ended(self, timeout):
        "The exit status, once the zygote has passed it on within `timeout` seconds (None: wait as long as it takes)"
        if self.returncode is None and select.select([self._conn], [], [], timeout)[0]:
            msg = self._conn.recv(4096)
            if not msg: raise RuntimeError(f'fork_job: the zygote ended before job {self.pid} did: its exit status is lost')
            self.returncode = json.loads(msg)['returncode']
            self._conn.close(); os.close(self._pidfd); self._pidfd = None
        return self.returncode

    def poll(self): return self._ended(0)

    def wait(self, timeout=None):
        if self._ended(timeout) is None: raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def send_signal(self, sig):
        "As Popen's: nothing once the job has ended (through its pidfd, which never names another process)"
        if self.poll() is None:
            try: signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError: pass   # ended, its status not passed on yet
    def terminate(self): self.send_signal(signal.SIGTERM)
    def kill(self): self.send_signal(signal.SIGKILL)

    def communicate(self, timeout=None):
        "Read stdout and stderr to their ends, then wait: (stdout, stderr) as text; called again after a timeout, it goes on"
        end = None if timeout is None else time.monotonic() + timeout
        open_ = [f for f in (self.stdout, self.stderr) if not f.closed]
        enc = self.stdout.encoding
        while open_:
            left = None if end is None else max(0., end - time.monotonic())
            ready = select.select(open_, [], [], left)[0]
            if not ready: raise subprocess.TimeoutExpired(self.args, timeout)
            for f in ready:
                data = os.read(f.fileno(), 1 << 16)
                if data: (self._out if f is self.stdout else self._err).append(data)
                else: f.close(); open_.remove(f)
        self.wait(None if end is None else max(0., end - time.monotonic()))
        text = lambda parts: b''.join(parts).decode(enc).replace('\r\n', '\n').replace('\r', '\n')   # Popen's text mode
        return text(self._out), text(self._err)

class Zygote:
    """The zygote, started with environment `env` (its PYTHON*, OMP_*, MKL_*... are every job's), its stderr to `log`
    (kept if given, else a file in /tmp removed once the zygote has ended cleanly): `job` forks a job"""
    def __init__(self, env=None, log=None):
        self.env = dict(os.environ if env is None else env)
        self.name = f'lottery_nb-jobs-{os.getpid()}-{time.time_ns()}'
        self.log, self._keep = str(log or f'/tmp/{self.name}.log'), log is not None
    def __enter__(self):
        self._logf = open(self.log, 'w')
        self.proc = subprocess.Popen([sys.executable, __file__, 'serve', self.name, str(os.getpid())], stdout=subprocess.PIPE,
                                     stderr=self._logf, text=True, env=self.env)
        ready = select.select([self.proc.stdout], [], [], READY_S)[0]
        if not ready or self.proc.stdout.readline().strip() != 'ready':
            self.proc.kill(); code = self.proc.wait(); self._logf.close()
            why = f'ended (exit {code})' if ready else f'did not say it was ready within {READY_S} s'
            raise RuntimeError(f"the jobs' zygote {why}; its log, {self.log}:\n{open(self.log).read()[-3000:]}")
        return self
    def job(self, args, env=None, cwd=None, host=None):
        "Fork `python ARGS` (`[script, *args]` or `['-c', code, *args]`) in folder `cwd`, with `env` (the zygote's if None)"
        if self.proc.poll() is not None:
            log = open(self.log).read()[-3000:] if os.path.exists(self.log) else '(its log was removed as it was closed)'
            raise RuntimeError(f"the jobs' zygote ended (exit {self.proc.returncode}): it forks no job; its log, {self.log}:\n{log}")
        return Job(self.name, args, self.env if env is None else env, cwd, host)
    def __exit__(self, *exc):
        "Stop the zygote, and with it every job still running (SIGKILL where it does not end in 60 s)"
        self.proc.terminate()
        try: self.proc.wait(60)
        except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        self.proc.stdout.close(); self._logf.close()
        if exc[0] is None and not self._keep and os.path.exists(self.log): os.remove(self.log)

if __name__ == '__main__':
    cmd, name, parent = sys.argv[1:4]
    assert cmd == 'serve', cmd
    sys.path.pop(0)   # this folder: a job's own script folder replaces it
    serve(name, int(parent))
