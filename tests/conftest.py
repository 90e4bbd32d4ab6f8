import threading, warnings
import pytest
warnings.filterwarnings('ignore', category=FutureWarning)
warnings.filterwarnings('ignore', category=DeprecationWarning)

# Under pytest-xdist (`bash tools/test.sh` runs `-n <cores> --dist loadfile`) a test file's tests stay in one process, so
# a module's expensive fixture (the docs site, a JupyterLab server, reference runs) is made once. The exception: the
# pages run in a fresh environment spread over the processes, one by one, since their environment is made once per
# session across the processes (`shared_env`, under a file lock).
SPREAD = {'tests/test_notebooks_fresh_env.py'}

class LoadFileSpread:
    "`--dist loadfile`, but each test of a file in SPREAD is a unit of its own (registered when pytest-xdist is active)"
    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config, log):
        if config.getvalue('dist') != 'loadfile': return None
        from xdist.scheduler import LoadFileScheduling
        class Scheduling(LoadFileScheduling):
            def _split_scope(self, nodeid):
                f = super()._split_scope(nodeid)
                return nodeid if f in SPREAD else f
        return Scheduling(config, log)

def pytest_configure(config):
    if config.pluginmanager.hasplugin('xdist'): config.pluginmanager.register(LoadFileSpread(), 'lottery_nb_loadfile_spread')

# The pages whose shown cells take longest under test (10-30 s each here; the others take 1-7 s)
LONG_PAGES = ('10_tutorial.lottery', '10a_many_seeds', '14_ticket_cost', '12_export', '11_tutorial.analysis')

def _order(item):
    "0: not a fresh-environment test; 1: a long page; 2: the other fresh-environment tests"
    if 'fresh_env' not in getattr(item, 'fixturenames', ()): return 0
    return 1 if any(f'[{p}.ipynb]' in item.nodeid for p in LONG_PAGES) else 2

def pytest_collection_modifyitems(config, items):
    """The pages run in a fresh environment go last: their environment is made meanwhile (`start_fresh_env`). The long
    ones go first among them, so that the short ones fill the end and no process waits long for the last page"""
    items.sort(key=_order)   # stable: the others keep their order

@pytest.fixture(scope='session', autouse=True)
def start_fresh_env(request, tmp_path_factory):
    """When a selected test runs the pages in a fresh environment, start making that environment (minutes of pip) in
    a thread at the session's first test, so the install overlaps the other tests; the tests' own fixture waits for it,
    and reports its failure"""
    if not any('fresh_env' in getattr(i, 'fixturenames', ()) and not i.get_closest_marker('skip') for i in request.session.items): return
    import test_notebooks_fresh_env as fresh
    tmp_path_factory.getbasetemp()   # made here, before the thread asks for it
    def make():
        try: fresh.shared_env(tmp_path_factory)
        except BaseException: pass   # kept by shared_env for the fixture `fresh_env`, which fails with it
    threading.Thread(target=make, daemon=True, name='fresh environment').start()
