"""Take docs/visualizer/*.png: the visualizer's page in headless Chromium (the browser of the
tests), for a painting network and a StyleGAN2 network.

    python docs/visualizer_screenshots.py --fpa=FPA.pkl --stylegan2=SG2.pkl [--seed=1] [--step=12]

Starts visualizer.py on a temporary folder holding copies of the two files (a symlink leading
outside --networks would not be listed), opens the page,
chooses each network, types the seed, presses keys on the step slider (painter) and saves a
screenshot of the window. Needs Chromium, chromedriver and selenium (make browser, the
viz-test extra).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

import click

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests import browser  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def show(driver, network: str, seed: int, seed_b: int) -> None:
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
    renders = driver.execute_script('return window.viz.renders')
    if driver.execute_script('return document.getElementById("network").value') != network:
        Select(driver.find_element('id', 'network')).select_by_value(network)
        browser.wait_for(driver, f'window.viz.renders > {renders}', timeout_s=60)
    for element_id, value in (('seed', seed), ('seed_b', seed_b)):
        field = driver.find_element('id', element_id)
        field.send_keys(Keys.CONTROL, 'a')
        field.send_keys(str(value))
        browser.wait_for(driver, f'window.viz.data.header.{element_id} === {value} && window.viz.data.ready', timeout_s=120)

@click.command()
@click.option('--fpa', 'fpa_pkl', required=True, metavar='PKL', help='A painting network (FPA or FPA/U-Net)')
@click.option('--stylegan2', 'sg2_pkl', required=True, metavar='PKL', help='A StyleGAN2 network')
@click.option('--seed', default=1, show_default=True, help='The seed shown')
@click.option('--step', default=12, show_default=True, help='The painting step shown')
@click.option('--outdir', default=os.path.join(REPO, 'docs', 'visualizer'), show_default=True, metavar='DIR')
def main(fpa_pkl, sg2_pkl, seed, step, outdir):
    reason = browser.missing()
    if reason:
        raise click.ClickException(reason)
    from selenium.webdriver.common.keys import Keys
    os.makedirs(outdir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in (('fpa.pkl', fpa_pkl), ('stylegan2.pkl', sg2_pkl)):
            shutil.copyfile(path, os.path.join(tmp, name))
        proc = subprocess.Popen([sys.executable, os.path.join(REPO, 'visualizer.py'), f'--networks={tmp}', '--port=0', '--device=cpu'],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
        url = next(m.group(1) for line in proc.stdout if (m := re.search(r'(http://\S+)', line)))
        driver = browser.launch(window_size=(1280, 1250))
        try:
            driver.get(url)
            browser.wait_for(driver, 'window.viz.renders >= 1', timeout_s=120)
            show(driver, 'fpa.pkl', seed, seed + 1)
            slider = driver.find_element('id', 'step')
            slider.send_keys(Keys.HOME)
            for _ in range(step):
                slider.send_keys(Keys.ARROW_RIGHT)
            driver.save_screenshot(os.path.join(outdir, 'painter.png'))
            show(driver, 'stylegan2.pkl', seed, seed + 1)
            driver.find_element('id', 'mix_hi').send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)   # Layers 0-1 from seed B.
            browser.wait_for(driver, 'window.viz.data.header.mix_hi === 2', timeout_s=60)
            driver.save_screenshot(os.path.join(outdir, 'stylegan2.png'))
        finally:
            driver.quit()
            proc.terminate()
            proc.wait()
    print(f'Wrote painter.png and stylegan2.png to "{outdir}"')

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter
