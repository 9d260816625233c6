"""The draw-a-digit page in a real headless Chromium (Selenium and chromium-driver): strokes drawn on #pad
are answered in #prediction, a photo is uploaded, and what the model saw is drawn beside the pad.

MNISTLAB_SCREENSHOT=docs/serve-page.png saves the page's screenshot there (the README shows it)."""

import os
import shutil
import socket
import threading
import time

import numpy as np
import pytest

import mnistlab
from mnistlab.serve import create_app

webdriver = pytest.importorskip("selenium.webdriver")
uvicorn = pytest.importorskip("uvicorn")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs chromium and chromium-driver (apt)")

# strokes on the 280x280 pad, as lists of points
DIGITS = {
    "1": [[(140, 45), (140, 235)]],
    "0": [[(140 + 62 * np.sin(t), 140 - 95 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 40)]],
    "7": [[(75, 55), (205, 55), (130, 240)]],
}


@pytest.fixture(scope="module")
def server(mnist_runs):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(mnistlab.load(mnist_runs[0].path))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1200,1000", "--disable-background-networking"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def _draw(browser, strokes):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput
    from selenium.webdriver.common.by import By

    pad = browser.find_element(By.ID, "pad")
    width = pad.size["width"]  # the pad's CSS size: points are given for its 280 canvas pixels
    for stroke in strokes:
        points = [(int(x * width / 280 - width / 2), int(y * width / 280 - width / 2)) for x, y in stroke]
        dense = []  # intermediate points, as a hand moving gives them
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            dense += [(round(x0 + (x1 - x0) * f), round(y0 + (y1 - y0) * f)) for f in np.linspace(0, 1, 8)[1:]]
        actions = ActionChains(browser)
        # 10 ms a move, as a quick hand (Selenium's default, 250 ms, makes a drawn 0 take a minute)
        actions.w3c_actions = ActionBuilder(browser, mouse=PointerInput("mouse", "mouse"), duration=10)
        pointer = actions.w3c_actions.pointer_action
        pointer.move_to(pad, *points[0]).pointer_down()
        for x, y in dense:
            pointer.move_to(pad, x, y)
        pointer.pointer_up()
        actions.perform()


def _answer(browser, previous: str = "") -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    prediction = browser.find_element(By.ID, "prediction")
    WebDriverWait(browser, 20).until(lambda _: prediction.text and prediction.text != previous
                                     or browser.find_element(By.ID, "status").text)
    return prediction.text


def test_drawn_digits_are_answered_and_explained(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server)
    WebDriverWait(browser, 20).until(lambda b: b.find_element(By.ID, "card").text)
    assert "a digit" in browser.find_element(By.ID, "task").text
    assert "keras-cnn" in browser.find_element(By.ID, "card").text
    for digit, strokes in DIGITS.items():
        browser.find_element(By.ID, "clear").click()
        _draw(browser, strokes)
        assert _answer(browser) == digit, browser.find_element(By.ID, "status").text
        bars = browser.find_elements(By.CSS_SELECTOR, "#bars li")
        assert len(bars) == 5 and bars[0].text.startswith(digit)
    # what the model saw: the 28x28 input and the occlusion map, drawn from /explain
    WebDriverWait(browser, 20).until(lambda b: b.execute_script(
        "const c = document.getElementById('saliency').getContext('2d');"
        "return c.getImageData(0, 0, 28, 28).data.some((v, i) => i % 4 !== 3 && v > 0);"))
    seen = browser.execute_script("return Array.from(document.getElementById('seen').getContext('2d')"
                                  ".getImageData(0, 0, 28, 28).data.filter((_, i) => i % 4 === 0));")
    assert 20 < sum(v > 128 for v in seen) < 300  # a 7's worth of ink, in a 28x28 image
    screenshot = tmp_path / "page.png"
    browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:4] == b"\x89PNG"
    if os.environ.get("MNISTLAB_SCREENSHOT"):
        shutil.copyfile(screenshot, os.environ["MNISTLAB_SCREENSHOT"])
    # undo and the keyboard: Ctrl+Z takes the last stroke back, Escape clears
    browser.find_element(By.ID, "undo").click()
    assert browser.find_element(By.ID, "prediction").text == ""


def test_an_uploaded_photo_is_answered(server, browser, tmp_path, mnist):
    from PIL import Image
    from selenium.webdriver.common.by import By

    browser.get(server)
    photo = tmp_path / "photo.jpg"  # dark ink on light paper, larger than 28x28: as a phone takes it
    big = Image.fromarray(255 - mnist.test_images[1]).resize((240, 240), Image.Resampling.BILINEAR)
    big.convert("RGB").save(photo, quality=90)
    browser.find_element(By.ID, "upload").send_keys(str(photo))
    assert _answer(browser) == str(mnist.test_labels[1])


def test_bad_files_are_reported_on_the_page(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really" + bytes(100))
    browser.find_element(By.ID, "upload").send_keys(str(broken))
    status = browser.find_element(By.ID, "status")
    WebDriverWait(browser, 20).until(lambda _: status.text)
    assert "broken.png: not a readable image" in status.text and "error" in status.get_attribute("class")


def test_the_page_needs_nothing_from_elsewhere():
    from pathlib import Path

    static = Path(mnistlab.__file__).parent / "serve" / "static"
    for path in static.iterdir():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path.name
    page = (static / "index.html").read_text()
    assert 'id="pad"' in page and 'id="prediction"' in page  # stable ids for tests and users' scripts
