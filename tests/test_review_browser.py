"""The review page in a real browser: headless Chromium loads a Stash-like host page whose
``PluginApi`` is real React 18, the page calls ``runPluginOperation`` on the bundled Stash
server, which runs the plugin as Stash does. Clicks accept and reject; the server and the
journal say what happened; a screenshot lands in the test's output folder.

Installs Debian's ``chromium`` and ``chromium-driver`` on first use (``.ci/setup-browser``);
skips (with the reason) where that fails or Selenium is missing. Nothing else is downloaded:
the driver's path is given, so Selenium Manager never runs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.browser.chromium import ensure_chromium
from tests.browser.host import Host
from tests.test_review import journal_db, seeded

SCREENSHOT = os.environ.get("AI_TAGGER_REVIEW_SCREENSHOT")
"""Also copy the screenshot here (how docs/review.png is made)."""


@pytest.fixture
def browser(monkeypatch):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    found = ensure_chromium()
    if isinstance(found, str):
        pytest.skip(found)
    chromium, chromedriver = found
    monkeypatch.setenv("SE_OFFLINE", "true")  # never let Selenium Manager fetch a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,760"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromedriver))
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def wait_for(driver, css: str, text: str | None = None, timeout: float = 60):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def found(d):
        for element in d.find_elements(By.CSS_SELECTOR, css):
            if text is None or text in element.text:
                return element
        return False

    return WebDriverWait(driver, timeout).until(found, f"{css} {text or ''} never appeared")


def chip(driver, item: str, tag: str):
    """The tag's chip on the item, once the page is idle (its buttons are disabled while it works)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 60).until(lambda d: not d.find_elements(By.CSS_SELECTOR, ".ai-tagger-card button:disabled"))
    return wait_for(driver, f'.ai-tagger-card[data-id="{item}"] .ai-tagger-chip[data-tag="{tag}"]')


def test_accept_and_reject_by_clicking_on_the_review_page(browser, stash, model, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    scene, image = seeded(stash, model, tmp_path)
    with Host(stash.url) as host:
        browser.get(host.url + "/favicon.ico")
        cookie = stash.session_cookie
        browser.add_cookie({"name": cookie["Name"], "value": cookie["Value"], "path": "/"})
        browser.get(host.url + "/plugin/ai_tagger/review")

        wait_for(browser, f'.ai-tagger-card[data-id="{scene}"]')
        assert "2 item(s) waiting" in browser.find_element(By.TAG_NAME, "h2").text
        thumbnail = browser.find_element(By.CSS_SELECTOR, f'.ai-tagger-card[data-id="{scene}"] img')
        loaded = "return arguments[0].complete && arguments[0].naturalWidth"
        WebDriverWait(browser, 30).until(lambda d: d.execute_script(loaded, thumbnail), "the screenshot never loaded")
        chip(browser, scene, "Red").find_element(By.CSS_SELECTOR, ".ai-tagger-accept").click()
        wait_for(browser, ".ai-tagger-notice", "accepted Red")
        chip(browser, scene, "Water").find_element(By.CSS_SELECTOR, ".ai-tagger-reject").click()
        wait_for(browser, ".ai-tagger-notice", "rejected Water")
        chip(browser, scene, "Outdoors")
        shot = tmp_path / "review.png"
        browser.save_screenshot(str(shot))
        chip(browser, image, "Beach").click()  # focus the chip, then the keyboard: a accepts it
        browser.find_element(By.TAG_NAME, "body").send_keys("a")
        wait_for(browser, ".ai-tagger-notice", "accepted Beach")
        chip(browser, scene, "Outdoors")

        browser.get(f"{host.url}/images/{image}")  # the image page's AI panel: why, and Reject
        beach = wait_for(browser, ".ai-tagger-panel li", "Beach")
        assert "accepted by the user" in beach.text and "score 70%" in beach.text
        beach.find_element(By.CSS_SELECTOR, ".ai-tagger-reject").click()
        wait_for(browser, ".ai-tagger-panel", "AI Tagger added nothing here")
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]

    assert stash.tags_of_scene(scene) == {"AI_Tagged", "AI_Review", "Red"}, "Outdoors still waits"
    assert stash.tags_of_image(image) == {"AI_Tagged"}, "accepted (AI_Review gone), then rejected on its page"
    with journal_db(stash) as db:
        rejected = db.execute("SELECT kind, tag_id FROM rejections ORDER BY kind").fetchall()
        accepted = db.execute("SELECT count(*) FROM writes w JOIN runs r ON r.id = w.run_id "
                              "WHERE r.mode = 'review_decide' AND w.rule LIKE 'accepted by the user%'").fetchone()[0]
    beach = stash.tag_by_name("Beach")["id"]
    assert rejected == [("image", beach), ("scene", "new:water")] and accepted == 2
    assert errors == [], errors
    assert shot.stat().st_size > 10_000
    if SCREENSHOT:
        Path(SCREENSHOT).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
