"""The docs site, built as the README says and opened in a real headless Chromium (Debian's, driven by playwright).

Chromium is set-up work, not test work: `tools/setup_system.sh` installs it (and .ci/run calls that script). When it
is missing these tests fail and say how to install it. Screenshots of three pages go to $LOTTERY_SCREENSHOTS (default: the test's temporary folder).

The site is built once (a module fixture; under pytest-xdist a file's tests stay in one process, see tests/conftest.py).
Every wait has a deadline that holds on a machine three times slower than CI's, and says what it waited for."""
import functools, http.server, os, re, shutil, subprocess, sys, threading
from pathlib import Path
from urllib.parse import urljoin, urlparse
import pytest

root = Path(__file__).resolve().parent.parent
CHROMIUM = '/usr/bin/chromium'
BUILD_S = 1200   # the build took 72 s on a busy 2-core machine (2026-12-06)
PAGE_S = 120     # a page loads, or answers a search, in a second or two here
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--disable-quic', '--no-first-run']

def _chromium_or_reason():
    if Path(CHROMIUM).exists(): return None
    return (f'Chromium is missing ({CHROMIUM}): the browser tests need it. Install it with `bash tools/setup_system.sh` '
            f'(Debian\'s chromium package; .ci/run does this before the tests)')

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "The site, built as the README says, with sudo and curl on the PATH that only record being called: the build installs nothing"
    tmp = tmp_path_factory.mktemp('site'); out, bin_ = tmp/'docs', tmp/'bin'; bin_.mkdir()
    for tool in ('sudo', 'curl', 'wget'):
        (bin_/tool).write_text(f'#!/bin/sh\necho "$0 $@" >> {tmp}/installers_called\nexit 1\n'); (bin_/tool).chmod(0o755)
    env = {**os.environ, 'PATH': f"{bin_}:{os.environ['PATH']}"}
    status = lambda: subprocess.run(['git', 'status', '--porcelain', '--untracked-files=all'], cwd=root, capture_output=True, text=True,
                                    timeout=PAGE_S).stdout
    before = status()
    try: r = subprocess.run([sys.executable, str(root/'tools'/'docs.py'), '--out', str(out)], cwd=root, capture_output=True, text=True,
                            env=env, timeout=BUILD_S)
    except subprocess.TimeoutExpired as e: pytest.fail(f'tools/docs.py did not build the site within {BUILD_S} s: {(e.stderr or b"")[-2000:]!r}')
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    # nbdev's build runs every cell that imports something: such a cell must not also do work (train, write files)
    assert status() == before, f'the docs build changed the repository: {set(status().splitlines()) ^ set(before.splitlines())}'

    assert 'Quarto is not installed' not in r.stdout + r.stderr and not (tmp/'installers_called').exists(), 'the docs build tried to install software'
    return out

@pytest.fixture(scope='module')
def base(site):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a, **k: None
    class Server(http.server.ThreadingHTTPServer): request_queue_size = 64   # pages load six at a time, each with its files
    srv = Server(('127.0.0.1', 0), handler)
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

def _new_page(browser, width=1280):
    page = browser.new_page(viewport={'width': width, 'height': 900})
    page.set_default_timeout(PAGE_S * 1000); page.set_default_navigation_timeout(PAGE_S * 1000)
    return page

def _open(browser, url, wait=True, width=1280):
    """Open `url`; return the page and its console errors (a failed request counts as one: the site must be self-contained).
    `wait=False` returns once the navigation has started: call `page.wait_for_load_state('networkidle')` before reading"""
    page = _new_page(browser, width)
    errors = []
    page.on('console', lambda m: errors.append(m.text) if m.type == 'error' else None)
    page.on('pageerror', lambda e: errors.append(f'page error: {e}'))
    page.on('requestfailed', lambda r: errors.append(f'request failed: {r.url}'))
    page.goto(url, wait_until='networkidle' if wait else 'commit')
    return page, errors

def test_site_has_every_page(site):
    pages = _pages(site)
    for name in ['index', 'core', 'granularity', 'criteria', 'sparsifier', 'schedules', 'callback', 'lottery', 'viz',
                 'data', 'cli', 'export', 'earlybird', 'instability', 'tutorial.lottery', 'tutorial.imp', 'tutorial.analysis']:
        assert f'{name}.html' in pages, f'{name}.html is missing from {pages}'

def _ids(path):
    "The ids a page's anchors can point at"
    return set(re.findall(r'\bid="([^"]+)"', path.read_text()))

# What each page shows when it is opened once at 1280 px, read for all the tests below that need no interaction: one
# load a page instead of one a test (the measurements are the same JavaScript the tests ran on pages of their own)
LINKS_JS = 'els => els.map(e => e.getAttribute("href"))'
IMGS_JS = 'els => els.map(e => [e.getAttribute("src"), e.naturalWidth, e.naturalHeight])'
CODE_JS = """[...document.querySelectorAll('div.sourceCode > pre')].filter(p => !p.closest('.cell-output') || p.classList.contains('python'))
    .map(p => [p.scrollWidth > p.clientWidth + 1, p.innerText.split('\\n').reduce((a, l) => l.length > a.length ? l : a, '')])"""
OVER_JS = 'document.documentElement.scrollWidth - window.innerWidth'
CUT_JS = "[...document.querySelectorAll('.cell-output > pre, .cell-output-stdout > pre')].filter(p => p.scrollWidth > p.clientWidth + 1).length"
ENTRIES_JS = """els => els.filter(e => e.querySelector('h3[id], h4[id]') && e.querySelector('pre'))
    .map(e => [e.querySelector('h3[id], h4[id]').innerText, [...e.querySelectorAll('a')].filter(a => a.innerText.trim() == 'source').map(a => a.href)])"""

@pytest.fixture(scope='module')
def opened(site, base, browser):
    "Every page of the site opened once at 1280 px, a few at a time (their waits overlap): {page: what the tests read from it}"
    seen, names = Opened(), _pages(site)
    for i in range(0, len(names), 6): seen.update(_read_all(browser, base, names[i:i+6]))
    return seen

class Opened(dict):
    "{page: what was read from it}: a page that could not be opened or read fails each test that reads it, with its name"
    def __getitem__(self, name):
        seen = super().__getitem__(name)
        if 'failed' in seen: pytest.fail(seen['failed'], pytrace=False)
        return seen
    def items(self): return [(k, self[k]) for k in self]

def _read_all(browser, base, names, width=1280):
    "Open `names` at once, then read each: {name: what `_read` returns, or why it failed}; every page is closed"
    opened, out = {}, {}
    for name in names:
        try: opened[name] = _open(browser, base + name, wait=False, width=width)
        except Exception as e: out[name] = dict(failed=f'{name} did not open: {type(e).__name__}: {str(e)[:500]}')
    for name, (page, errors) in opened.items():
        try: out[name] = _read(page, errors)
        except Exception as e: out[name] = dict(failed=f'{name} could not be read: {type(e).__name__}: {str(e)[:500]}')
    return out

def _read(page, errors):
    "What the tests read from a page, once its network is idle; the page is closed, whatever happens"
    try:
        page.wait_for_load_state('networkidle')
        return dict(
            errors=errors, hrefs=page.eval_on_selector_all('a[href]', LINKS_JS),
            imgs=page.eval_on_selector_all('img', IMGS_JS), code=page.evaluate(CODE_JS),
            over=page.evaluate(OVER_JS), cut=page.evaluate(CUT_JS), doc_links=_doc_links(page),
            entries=page.eval_on_selector_all('.cell-output-markdown', ENTRIES_JS),
            text=page.inner_text('main') if page.query_selector('main') else page.inner_text('body'),
            katex=len(page.query_selector_all('.katex')),
            nav=page.eval_on_selector_all('nav a[href]', LINKS_JS),
            main_links=page.eval_on_selector_all('main a[href]', 'els => els.map(e => [e.getAttribute("href"), e.innerText])'),
            params=page.eval_on_selector_all('.cell-output-markdown table tr', 'els => els.map(e => e.innerText)'),
            wide_sigs=page.eval_on_selector_all('.cell-output-markdown pre', 'els => els.filter(e => e.scrollWidth > e.clientWidth + 2).length'))
    finally: page.close()

def test_pages_load_links_resolve_images_load(site, base, opened):
    problems, ids = [], {}
    for name, seen in opened.items():
        problems += [f'{name}: console: {e}' for e in seen['errors']]
        for href in seen['hrefs']:
            u = urlparse(urljoin(base + name, href))
            if u.hostname != '127.0.0.1' or not u.path: continue
            target = site/u.path.lstrip('/')
            if target.is_dir(): target = target/'index.html'
            if not target.exists(): problems.append(f'{name}: broken link {href}'); continue
            if u.fragment and target.suffix == '.html':
                if target not in ids: ids[target] = _ids(target)
                if u.fragment not in ids[target]: problems.append(f'{name}: broken anchor {href}')
        problems += [f'{name}: image {src} did not load' for src, w, _ in seen['imgs'] if not w]
    assert not problems, '\n'.join(problems)

def test_gifs_are_on_the_pages(opened):
    for name, gif in [('index.html', 'lth.gif'), ('tutorial.lottery.html', 'tutorial_masks.gif')]:
        sizes = opened[name]['imgs']
        assert any(s.endswith(gif) and w > 0 and h > 0 for s, w, h in sizes), (name, sizes)

@pytest.mark.parametrize('name, signatures', [
    ('sparsifier.html', ['Sparsifier', 'granularity', 'method', 'criteria', 'layer_type', 'prune', 'snapshot', 'reset']),
    ('callback.html', ['SparsifyCallback', 'sparsity', 'sched_func', 'start_epoch', 'end_epoch', 'rewind']),
    ('core.html', ['prunable_layers', 'add_masks', 'remove_masks', 'sparsity_report']),
    ('schedules.html', ['annealing_cos', 'iterative', 'agp', 'one_cycle', 'dsd']),
    ('lottery.html', ['find_ticket', 'save_ticket', 'load_ticket', 'prune_pct']),
    ('viz.html', ['plot_schedule', 'schedule_explorer', 'draw_network', 'animate_masks', 'MaskRecorder'])])
def test_api_pages_show_signatures(opened, name, signatures):
    missing = [s for s in signatures if s not in opened[name]['text']]
    assert not missing, f'{name} lacks {missing}'

def test_maths_renders_offline(opened):
    n, errors = opened['criteria.html']['katex'], opened['criteria.html']['errors']
    assert n > 5 and not errors, (n, errors)

def test_search_finds_sparsifycallback(base, browser):
    page, _ = _open(browser, base + 'index.html')
    box = [b for b in page.query_selector_all('.smalldocs-search input') if b.is_visible()]
    if not box:
        page.keyboard.press('/')
        box = [b for b in page.query_selector_all('.smalldocs-search input') if b.is_visible()]
    box[0].fill('SparsifyCallback')
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    try: page.wait_for_selector('.search-result', timeout=PAGE_S * 1000)
    except PlaywrightTimeout: pytest.fail(f'waited {PAGE_S} s for a search result for SparsifyCallback on index.html; none came')
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

API_PAGES = ['core', 'granularity', 'criteria', 'sparsifier', 'schedules', 'callback', 'earlybird', 'lottery', 'instability', 'viz',
             'export', 'data', 'models']

def _doc_links(page):
    "Links whose text is a name in code (what nbdev makes of a backticked name), to an anchor on this site"
    return page.eval_on_selector_all('a[href] > code', 'els => els.map(e => [e.parentElement.getAttribute("href"), e.innerText])')

@pytest.mark.parametrize('name', API_PAGES + ['tutorial.lottery', 'tutorial.imp', 'tutorial.analysis', 'index'])
def test_names_link_to_their_docs(base, opened, name):
    links = [(h, t) for h, t in opened[name + '.html']['doc_links'] if '#' in h and urlparse(urljoin(base + name + '.html', h)).hostname == '127.0.0.1']
    assert links, f'no name on {name}.html links to its docs: is strip_libs set in [tool.nbdev]?'

def test_site_is_linked_up(site):
    "Hundreds of names in backticks on the site are links to their docs (there were none before strip_libs was set)"
    n = sum(len(re.findall(r'<a href="[^"]*#[^"]*"[^>]*><code>', p.read_text())) for p in site.glob('*.html'))
    assert n > 200, n

def test_every_api_entry_has_a_source_link_to_its_definition(opened):
    "Each show_doc entry links to GitHub, at the line where the name is defined in lottery_nb/"
    problems, n = [], 0
    for name in API_PAGES:
        for title, srcs in opened[name + '.html']['entries']:
            n += 1
            if len(srcs) != 1: problems.append(f'{name}.html: {title} has {len(srcs)} source links'); continue
            m = re.match(r'https://github.com/lottery-nb/lottery-nb/blob/main/(lottery_nb/\w+\.py)#L(\d+)$', srcs[0])
            if not m: problems.append(f'{name}.html: {title}: bad source link {srcs[0]}'); continue
            lines = (root/m.group(1)).read_text().splitlines()[int(m.group(2))-1:int(m.group(2))+2]
            short = title.split('.')[-1]
            if not any(re.match(rf'\s*(def|class) {re.escape(short)}\b|\s*{re.escape(short)}\s*=|\s*@', l) for l in lines):
                problems.append(f'{name}.html: {title}: {srcs[0]} points at {lines[:1]}')
    assert n > 60 and not problems, (n, problems)

def test_parameters_are_described(opened):
    "The main entries show a parameter table, and no description is hidden off the side of the page"
    rows, wide = opened['callback.html']['params'], opened['callback.html']['wide_sigs']
    assert any(r.startswith('sched_func') for r in rows) and any(r.startswith('rewind') for r in rows), rows[:5]
    assert wide == 0, f'{wide} signatures scroll sideways at 1280 px'

def test_navbar_links_the_repository_and_home_links_the_tutorials(opened):
    nav, tut = opened['index.html']['nav'], opened['index.html']['main_links']
    assert 'https://github.com/lottery-nb/lottery-nb' in nav, nav
    for href in ['tutorial.lottery.html', 'tutorial.imp.html', 'tutorial.analysis.html']:
        assert any(h == href and 'Tutorial' in t for h, t in tut), (href, tut)

WIDE_PAGES = ['index', 'tutorial.imp', 'tutorial.lottery', 'tutorial.analysis', 'ticket_cost', 'cli', 'errors', 'lottery', 'many_seeds']

@pytest.mark.parametrize('width', [1280, 390])
def test_nothing_scrolls_the_page_sideways_and_printed_lines_wrap(site, base, browser, opened, width):
    "At a laptop's 1280 px and a phone's 390 px: the page never scrolls sideways, and no printed output is cut at its edge"
    missing = [n for n in WIDE_PAGES if not (site/f'{n}.html').exists()]
    assert not missing, f'pages this test measures are not on the site: {missing} (renamed? update WIDE_PAGES)'
    if width == 1280: seen = {n: opened[f'{n}.html'] for n in WIDE_PAGES}   # as every page was opened
    else: seen = {n[:-5]: v for n, v in Opened(_read_all(browser, base, [f'{n}.html' for n in WIDE_PAGES], width)).items()}
    bad = [(name, seen[name]['over'], seen[name]['cut']) for name in WIDE_PAGES if seen[name]['over'] > 1 or seen[name]['cut']]
    assert not bad, f'(page, px the page scrolls sideways, printed outputs cut) at {width} px: {bad}'

def test_code_fits_at_1280_px(opened):
    "At 1280 px no code block of any page (cells, fenced blocks and API signatures, not printed outputs) scrolls sideways"
    bad, n = [], 0
    for name, seen in opened.items():
        n += len(seen['code'])
        bad += [f'{name[:-5]}: {l[:50]}... ({len(l)})' for w, l in seen['code'] if w]
    assert n > 200 and not bad, (n, bad)

def test_fastai_names_link_to_fastai_docs(site):
    "`Learner`, `DataLoaders` and the other fastai names link to fastai's own docs, through its nbdev index"
    html = (site/'train.html').read_text() + (site/'data.html').read_text()
    for target in ('docs.fast.ai/learner.html#learner', 'docs.fast.ai/data.core.html#dataloaders'): assert target in html, target
