"""The schedule explorer in a real JupyterLab, used as a reader uses it (slow).

JupyterLab comes from the package registry with the `dev` extra. The test starts it on 127.0.0.1 with a token, on a copy
of nbs/ (so nothing it runs changes the committed notebooks), opens 08_viz in Chromium, runs all cells, checks that no
cell shows an error, moves the explorer's sparsity slider and checks that the picture and the readout changed. A second
notebook sets the slider from Python right after displaying the explorer, waits until the browser has drawn it, and
checks that the value survived that first render. Then the server is stopped.

Every wait has a deadline that holds on a machine three times slower than CI's, busy with other tests, and a wait
that runs out says what it waited for."""
import json, os, secrets, shutil, socket, subprocess, sys, time
from pathlib import Path
import pytest

root = Path(__file__).resolve().parent.parent
CHROMIUM = '/usr/bin/chromium'
pytestmark = pytest.mark.slow
START_S = 300     # the server answers, a page loads, a kernel starts: each takes seconds here (JupyterLab: about 10 s)
RUN_S = 900       # 08_viz runs all its cells in about 10 s here (nbs/_timings.json)
DRAW_S = 120      # the browser draws a widget, or redraws its picture

def _port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    if not Path(CHROMIUM).exists(): pytest.fail(f'Chromium is missing ({CHROMIUM}): run `bash tools/setup_system.sh`')
    pytest.importorskip('jupyterlab', reason='JupyterLab comes with the dev extra: pip install -e ".[dev]"')
    work = tmp_path_factory.mktemp('lab')/'nbs'
    shutil.copytree(root/'nbs', work, ignore=shutil.ignore_patterns('tmp', 'models', '.ipynb_checkpoints'))
    shutil.copy(root/'pyproject.toml', work.parent)   # the notebooks' last cell runs nbdev-export, into this copy
    cells = [dict(cell_type='code', metadata={}, outputs=[], execution_count=None, source=s) for s in [
        'from lottery_nb.viz import schedule_explorer\nex = schedule_explorer()\ndisplay(ex)\nex.sparsity.value = 50',
        'print(ex.sparsity.value)']]   # the test runs this cell once the browser has drawn the explorer
    (work/'set_from_python.ipynb').write_text(json.dumps(dict(cells=cells, metadata=dict(kernelspec=dict(
        name='python3', display_name='Python 3', language='python')), nbformat=4, nbformat_minor=5)))
    port, token = _port(), secrets.token_hex(16)
    env = {**os.environ, 'JUPYTER_CONFIG_DIR': str(work.parent/'cfg'), 'JUPYTER_RUNTIME_DIR': str(work.parent/'rt')}
    log = work.parent/'jupyterlab.log'
    with open(log, 'w') as out:
        proc = subprocess.Popen([sys.executable, '-m', 'jupyterlab', '--no-browser', '--ip=127.0.0.1', f'--port={port}',
                                 f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={work}',
                                 '--LabApp.expose_app_in_browser=True', '--allow-root'],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    base, deadline = f'http://127.0.0.1:{port}', time.monotonic() + START_S
    while True:
        if proc.poll() is not None:
            pytest.fail(f'JupyterLab exited with {proc.returncode} before it answered on 127.0.0.1:{port}:\n{log.read_text()[-2000:]}')
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=1): break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill(); proc.wait(60)
                pytest.fail(f'JupyterLab did not answer on 127.0.0.1:{port} within {START_S} s:\n{log.read_text()[-2000:]}')
            time.sleep(0.5)
    yield base, token
    proc.terminate()
    try: proc.wait(60)
    except subprocess.TimeoutExpired: proc.kill(); proc.wait(60)
    assert proc.poll() is not None, 'the JupyterLab server did not stop, even killed'

@pytest.fixture(scope='module')
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=['--headless', '--no-sandbox', '--disable-gpu'])
        yield b
        b.close()

RUN_ALL = """async () => {
  const app = window.jupyterapp;
  await app.commands.execute('notebook:run-all-cells');
}"""
# Every code cell executed (has a count), and the kernel idle: read from the notebook's model, not the DOM, because
# JupyterLab only renders the cells in view.
STATE = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  if (!w || !w.content || !w.sessionContext.session) return null;
  const cells = w.content.widgets.filter(c => c.model.type === 'code');
  const errors = [];
  for (const c of cells) for (const o of c.model.outputs.toJSON())
    if (o.output_type === 'error') errors.push(o.ename + ': ' + o.evalue);
  return {status: w.sessionContext.session.kernel.status, done: cells.filter(c => c.model.executionCount).length,
          n: cells.length, errors: errors};
}"""

RUN_CELL = """async (i) => {
  const app = window.jupyterapp, nb = app.shell.currentWidget.content;
  nb.activeCellIndex = i;
  await app.commands.execute('notebook:run-cell');
}"""

def _wait(page, what, js, arg=None, timeout_s=START_S):
    "Wait until `js` is true in the page; past `timeout_s`, fail saying what was awaited"
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    try: page.wait_for_function(js, arg=arg, timeout=timeout_s * 1000, polling=500)
    except PlaywrightTimeout: pytest.fail(f'waited {timeout_s} s for {what}; in vain')

def _open(browser, lab, name):
    "Open notebook `name` in JupyterLab and wait until its kernel is idle"
    base, token = lab
    page = browser.new_page(viewport={'width': 1400, 'height': 1000})
    page.set_default_timeout(DRAW_S * 1000); page.set_default_navigation_timeout(START_S * 1000)
    page.goto(f'{base}/lab/tree/{name}?reset&token={token}')   # reset: no tabs restored from before
    _wait(page, f'JupyterLab to open {name} with an idle kernel',
          "(name) => window.jupyterapp && window.jupyterapp.shell.currentWidget && "
          "window.jupyterapp.shell.currentWidget.context.path === name && "
          "window.jupyterapp.shell.currentWidget.sessionContext.session && "
          "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel && "
          "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'", arg=name)
    return page

def _wait_done(page, name, timeout_s=RUN_S):
    "Wait until every code cell has run and the kernel is idle, or a cell shows an error; return the notebook's state"
    deadline = time.monotonic() + timeout_s
    while True:
        st = page.evaluate(STATE)
        if st and (st['errors'] or (st['status'] == 'idle' and st['done'] == st['n'])): return st
        assert time.monotonic() < deadline, f'waited {timeout_s} s for every cell of {name} to run; the last state: {st}'
        time.sleep(1)

def _open_and_run(browser, lab, name):
    page = _open(browser, lab, name)
    page.evaluate(RUN_ALL)
    return page, _wait_done(page, name)

def _explorer(page):
    "The first explorer's sparsity slider handle, its readout, and its picture"
    slider = page.locator('.widget-slider', has=page.locator('.widget-label', has_text='sparsity %')).first
    slider.scroll_into_view_if_needed()
    box = slider.locator('xpath=ancestor::div[contains(@class, "widget-vbox")][1]')
    return slider.locator('.noUi-handle'), slider.locator('.widget-readout'), box.locator('img').first

def test_run_all_then_move_the_slider(lab, browser):
    page, st = _open_and_run(browser, lab, '08_viz.ipynb')
    assert not st['errors'], f"cells failed in JupyterLab: {st['errors']}"
    page.evaluate("() => { const nb = window.jupyterapp.shell.currentWidget.content; "
                  "const i = nb.widgets.findIndex(c => c.model.sharedModel.getSource().trim() === 'ex = schedule_explorer()\\nex'); "
                  "return nb.scrollToItem(i, 'start'); }")
    handle, readout, img = _explorer(page)
    img.wait_for(state='visible', timeout=DRAW_S * 1000)
    assert readout.inner_text().strip() == '80'
    before = img.get_attribute('src')
    handle.focus()
    for _ in range(10): handle.press('ArrowLeft')
    _wait(page, 'the explorer to redraw its picture after the slider moved', "([el, before]) => el.getAttribute('src') !== before",
          arg=[img.element_handle(), before], timeout_s=DRAW_S)
    assert readout.inner_text().strip() == '70'
    shots = os.environ.get('LOTTERY_SCREENSHOTS')
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        img.locator('xpath=ancestor::div[contains(@class, "widget-vbox")][1]').screenshot(path=str(Path(shots)/'explorer_moved.png'))
    page.close()

def test_a_value_set_from_python_survives_the_first_render(lab, browser):
    page = _open(browser, lab, 'set_from_python.ipynb')
    page.evaluate(RUN_CELL, 0)   # display the explorer, then set its slider from Python at once
    _, readout, _ = _explorer(page)
    readout.wait_for(state='visible', timeout=DRAW_S * 1000)   # the browser has drawn it: its first render is done
    page.evaluate(RUN_CELL, 1)   # runs after any message the first render sent back
    st = _wait_done(page, 'set_from_python.ipynb', timeout_s=DRAW_S)
    assert not st['errors'], st['errors']
    out = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets[1].model.outputs.toJSON()")
    assert out and out[0]['text'].strip() == '50', out
    assert readout.inner_text().strip() == '50'
    page.close()
