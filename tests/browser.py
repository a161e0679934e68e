"""Headless Chromium for the visualizer's browser tests and its latency benchmark: Debian's
`chromium` and `chromium-driver` (make browser installs them as root) driven by selenium
(the viz-test extra). Nothing is downloaded at run time: both paths are given to selenium,
so its driver manager never runs."""

import shutil
import tempfile
import threading

CHROMIUM_NAMES = ('chromium', 'chromium-browser', 'google-chrome')
CHROMEDRIVER_NAMES = ('chromedriver',)
FLAGS = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-extensions', '--window-size=1300,1000')

def _which(names) -> str | None:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None

def missing() -> str | None:
    """Why no browser test can run here, or None when they can."""
    try:
        import selenium # noqa: F401
    except ImportError:
        return 'selenium is not installed (pip install -e ".[viz-test]")'
    if _which(CHROMIUM_NAMES) is None:
        return 'no Chromium (as root: make browser, or apt-get install chromium chromium-driver)'
    if _which(CHROMEDRIVER_NAMES) is None:
        return 'no chromedriver (as root: apt-get install chromium-driver)'
    return None

def launch(window_size: tuple[int, int] = (1300, 1000)):
    """A headless Chromium with a fresh profile folder (removed when the driver quits)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    profile = tempfile.mkdtemp(prefix='viz-chromium-')
    options = webdriver.ChromeOptions()
    options.binary_location = _which(CHROMIUM_NAMES)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f'--window-size={window_size[0]},{window_size[1]}')
    options.add_argument(f'--user-data-dir={profile}')
    driver = webdriver.Chrome(options=options, service=Service(executable_path=_which(CHROMEDRIVER_NAMES)))
    quit_driver = driver.quit
    def quit_and_clean():
        try:
            quit_driver()
        finally:
            shutil.rmtree(profile, ignore_errors=True)
    driver.quit = quit_and_clean
    return driver

def serve_in_thread(server) -> threading.Thread:
    """Run a visualizer.Server in a daemon thread (stop it with server.shutdown())."""
    thread = threading.Thread(target=server.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True)
    thread.start()
    return thread

def wait_for(driver, script: str, timeout_s: float = 20):
    """Poll a JavaScript expression until it is truthy; returns its value."""
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout_s, poll_frequency=0.02).until(lambda d: d.execute_script(f'return {script};'))

def canvas_pixels(driver, canvas_id: str):
    """The canvas's pixels as drawn: uint8 numpy [H, W, 4] (getImageData)."""
    import numpy as np
    h, w, data = driver.execute_script(
        'const c = document.getElementById(arguments[0]);'
        'return [c.height, c.width, Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data)];', canvas_id)
    return np.array(data, dtype=np.uint8).reshape(h, w, 4)
