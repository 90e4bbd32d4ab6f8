"""The docs site, built as the README says and opened in a real headless Chromium (Debian's, driven by playwright).

Chromium is set-up work, not test work: `tools/setup_system.sh` installs it (and .ci/run calls that script). When it
is missing these tests fail and say how to install it. Screenshots of three pages go to $LOTTERY_SCREENSHOTS (default: the test's temporary folder)."""
import functools, http.server, os, shutil, subprocess, sys, threading
from pathlib import Path
from urllib.parse import urljoin, urlparse
import pytest

root = Path(__file__).resolve().parent.parent
CHROMIUM = '/usr/bin/chromium'
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--disable-quic', '--no-first-run']

def _chromium_or_reason():
    if Path(CHROMIUM).exists(): return None
    return (f'Chromium is missing ({CHROMIUM}): the browser tests need it. Install it with `bash tools/setup_system.sh` '
            f'(Debian\'s chromium package; .ci/run does this before the tests)')

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site')/'docs'
    subprocess.run([sys.executable, str(root/'tools'/'docs.py'), '--out', str(out)], cwd=root, check=True, capture_output=True)
    return out

@pytest.fixture(scope='module')
def base(site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a, **k: None
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{srv.server_address[1]}/'
    srv.shutdown()

@pytest.fixture(scope='module')
def browser():
    reason = _chromium_or_reason()
    if reason: pytest.fail(reason)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)   # playwright gives it a fresh profile
        yield b
        b.close()

def _pages(site): return sorted(p.relative_to(site).as_posix() for p in site.glob('*.html'))

def _open(browser, url):
    "Open `url`; return the page and its console errors (a failed request counts as one: the site must be self-contained)"
    page = browser.new_page(viewport={'width': 1280, 'height': 900})
    errors = []
    page.on('console', lambda m: errors.append(m.text) if m.type == 'error' else None)
    page.on('pageerror', lambda e: errors.append(f'page error: {e}'))
    page.on('requestfailed', lambda r: errors.append(f'request failed: {r.url}'))
    page.goto(url, wait_until='networkidle')
    return page, errors

def test_site_has_every_page(site):
    pages = _pages(site)
    for name in ['index', 'core', 'granularity', 'criteria', 'sparsifier', 'schedules', 'callback', 'lottery', 'viz',
                 'data', 'cli', 'tutorial.lottery', 'tutorial.imp']:
        assert f'{name}.html' in pages, f'{name}.html is missing from {pages}'

def test_pages_load_links_resolve_images_load(site, base, browser):
    problems = []
    for name in _pages(site):
        page, errors = _open(browser, base + name)
        problems += [f'{name}: console: {e}' for e in errors]
        for href in page.eval_on_selector_all('a[href]', 'els => els.map(e => e.getAttribute("href"))'):
            u = urlparse(urljoin(base + name, href))
            if u.hostname != '127.0.0.1' or not u.path: continue
            target = site/u.path.lstrip('/')
            if target.is_dir(): target = target/'index.html'
            if not target.exists(): problems.append(f'{name}: broken link {href}')
        for src, w in page.eval_on_selector_all('img', 'els => els.map(e => [e.getAttribute("src"), e.naturalWidth])'):
            if not w: problems.append(f'{name}: image {src} did not load')
        page.close()
    assert not problems, '\n'.join(problems)

def test_gifs_are_on_the_pages(site, base, browser):
    for name, gif in [('index.html', 'lth.gif'), ('tutorial.lottery.html', 'tutorial_masks.gif')]:
        page, _ = _open(browser, base + name)
        sizes = page.eval_on_selector_all('img', 'els => els.map(e => [e.getAttribute("src"), e.naturalWidth, e.naturalHeight])')
        assert any(s.endswith(gif) and w > 0 and h > 0 for s, w, h in sizes), (name, sizes)
        page.close()

@pytest.mark.parametrize('name, signatures', [
    ('sparsifier.html', ['Sparsifier', 'granularity', 'method', 'criteria', 'layer_type', 'prune', 'snapshot', 'reset']),
    ('callback.html', ['SparsifyCallback', 'sparsity', 'sched_func', 'start_epoch', 'end_epoch', 'rewind']),
    ('core.html', ['prunable_layers', 'add_masks', 'remove_masks', 'sparsity_report']),
    ('schedules.html', ['annealing_cos', 'iterative', 'agp', 'one_cycle', 'dsd']),
    ('lottery.html', ['find_ticket', 'save_ticket', 'load_ticket', 'prune_pct']),
    ('viz.html', ['plot_schedule', 'schedule_explorer', 'draw_network', 'animate_masks', 'MaskRecorder'])])
def test_api_pages_show_signatures(base, browser, name, signatures):
    page, _ = _open(browser, base + name)
    text = page.inner_text('main') if page.query_selector('main') else page.inner_text('body')
    missing = [s for s in signatures if s not in text]
    page.close()
    assert not missing, f'{name} lacks {missing}'

def test_maths_renders_offline(base, browser):
    page, errors = _open(browser, base + 'criteria.html')
    n = len(page.query_selector_all('.katex'))
    page.close()
    assert n > 5 and not errors, (n, errors)

def test_search_finds_sparsifycallback(base, browser):
    page, _ = _open(browser, base + 'index.html')
    box = [b for b in page.query_selector_all('.smalldocs-search input') if b.is_visible()]
    if not box:
        page.keyboard.press('/')
        box = [b for b in page.query_selector_all('.smalldocs-search input') if b.is_visible()]
    box[0].fill('SparsifyCallback')
    page.wait_for_selector('.search-result', timeout=10_000)
    hits = page.eval_on_selector_all('.search-result', 'els => els.map(e => [e.getAttribute("href"), e.innerText])')
    page.close()
    assert any('callback.html' in h and 'SparsifyCallback' in t for h, t in hits), hits

def test_screenshots(base, browser, tmp_path):
    out = Path(os.environ.get('LOTTERY_SCREENSHOTS', tmp_path)); out.mkdir(parents=True, exist_ok=True)
    for name in ['index.html', 'sparsifier.html', 'tutorial.lottery.html']:
        page, _ = _open(browser, base + name)
        page.screenshot(path=str(out/(name[:-5] + '.png')), full_page=False)
        page.close()
        assert (out/(name[:-5] + '.png')).stat().st_size > 10_000
