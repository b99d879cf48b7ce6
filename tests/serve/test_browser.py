"""The web page of `sinsr-host serve` in a real browser (headless Chromium through Selenium): pick
a sample, press Upscale, wait for the result, and check that the image the page offers for
download has the bytes `sinsr-host infer -j 1` writes. A screenshot of the page goes to
SCREENSHOT (tools/make_pictures.sh copies it into docs/images/).

Usage: test_browser.py SINSR_HOST SOURCE_DIR SCREENSHOT
Skipped (exit 77) only when SINSR_BROWSER_TEST=0: a browser that cannot start fails the test.
Debian: chromium chromium-driver python3-selenium (tools/debian-packages.txt).
"""
import base64
import os
import signal
import subprocess
import sys
import tempfile
import time

if os.environ.get("SINSR_BROWSER_TEST") == "0":
    print("skipped: SINSR_BROWSER_TEST=0")
    sys.exit(77)
if len(sys.argv) != 4:
    sys.exit("usage: test_browser.py SINSR_HOST SOURCE_DIR SCREENSHOT")
HOST_EXE, SOURCE, SCREENSHOT = (os.path.abspath(a) for a in sys.argv[1:4])
SAMPLE = os.path.join(SOURCE, "samples", "lr_realesrgan_x4", "autumn.png")

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError as e:
    sys.exit("test_browser: %s: install chromium chromium-driver python3-selenium "
             "(tools/debian-packages.txt), or set SINSR_BROWSER_TEST=0 to skip" % e)


def main():
    tmp = tempfile.mkdtemp(prefix="sinsr_browser_")
    cli = os.path.join(tmp, "cli.png")
    subprocess.run([HOST_EXE, "infer", "-j", "1", "-q", "-i", SAMPLE, "-o", cli], check=True)
    server = subprocess.Popen([HOST_EXE, "serve", "--port", "0", "-j", "1", "-q"], stdout=subprocess.PIPE, text=True)
    driver = None
    try:
        line = server.stdout.readline()
        assert "listening on http://" in line, line
        url = line.split("listening on ", 1)[1].strip()

        options = webdriver.ChromeOptions()
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1000,1300"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        driver.set_script_timeout(60)
        driver.get(url)
        wait = WebDriverWait(driver, 120)
        # The model list comes from /v1/models; the default model is selected.
        wait.until(lambda d: len(Select(d.find_element(By.ID, "model")).options) > 0)
        chosen = Select(driver.find_element(By.ID, "model")).first_selected_option.text
        # Every control has a label (the page's accessibility promise).
        for control in driver.find_elements(By.CSS_SELECTOR, "input, select"):
            cid = control.get_attribute("id")
            assert driver.find_elements(By.CSS_SELECTOR, "label[for='%s']" % cid), "no label for #" + cid
        driver.find_element(By.ID, "file").send_keys(SAMPLE)
        wait.until(ready.element_to_be_clickable((By.ID, "go"))).click()
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-done") == "1")
        status = driver.find_element(By.ID, "status").text
        assert status.startswith("Done in "), status
        # The download link's blob, fetched inside the page.
        data = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            fetch(document.getElementById("download").href).then(r => r.arrayBuffer()).then(b => {
              let s = ""; const u = new Uint8Array(b);
              for (let i = 0; i < u.length; i++) s += String.fromCharCode(u[i]);
              done(btoa(s));
            });""")
        page_bytes = base64.b64decode(data)
        with open(cli, "rb") as f:
            cli_bytes = f.read()
        assert page_bytes == cli_bytes, "the page's download differs from `sinsr-host infer -j 1` (%d vs %d bytes)" % (
            len(page_bytes), len(cli_bytes))
        # The comparison slider moves with the keyboard.
        slider = driver.find_element(By.ID, "slider")
        slider.send_keys("\ue012" * 10)  # arrow left: more of "after" shows
        driver.execute_script("window.scrollTo(0, 0)")
        os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
        driver.save_screenshot(SCREENSHOT)
        print("test_browser: model %s, %s; the download equals the CLI's %d bytes; screenshot %s"
              % (chosen, status, len(cli_bytes), SCREENSHOT))
    finally:
        if driver:
            driver.quit()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
