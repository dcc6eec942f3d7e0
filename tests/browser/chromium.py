"""Debian's headless Chromium driven by Selenium, for the tests in Stash's real web UI.

Nothing is downloaded: the browser and driver are the system's (``.ci/setup`` installs Debian's
``chromium`` and ``chromium-driver``), their paths are given, and ``SE_OFFLINE`` keeps Selenium
Manager from fetching anything. Every profile is fresh, and background traffic (updates, sync,
QUIC) is off, so a run sees only the test's own servers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

CHROMIUM = os.environ.get("AI_TAGGER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = os.environ.get("AI_TAGGER_CHROMEDRIVER") or shutil.which("chromedriver")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1")
DESKTOP = (1280, 800)
_FIND = """
const [css, text, shown] = arguments;
for (const e of document.querySelectorAll(css)) {
  if (shown && !e.getClientRects().length) continue;
  if (text === null || e.innerText.includes(text)) return e;
}
return null;"""
"""One round trip per look (a page has hundreds of candidates; asking for each is slow)."""
PHONE = (390, 844)


def missing() -> str | None:
    """Why the browser cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    if not CHROMIUM or not CHROMEDRIVER:
        return "Chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)"
    return None


class Browser:
    """One Chromium for a test module: pages, waits, and the console's errors."""

    def __init__(self) -> None:
        from selenium import webdriver

        os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager fetch a browser or driver
        self.profile = tempfile.mkdtemp(prefix="ai-tagger-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM or ""
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.add_argument("--window-size={},{}".format(*DESKTOP))
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
        self.driver.implicitly_wait(0)
        self.size(*DESKTOP)

    def quit(self) -> None:
        self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)

    def size(self, width: int, height: int) -> None:
        """The page's viewport exactly this size (window chrome differs between builds)."""
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})

    def sign_in(self, url: str, cookie: dict[str, Any]) -> None:
        """Stash's session cookie for that server, as a signed-in user's browser holds it."""
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.setCookie", {
            "name": cookie["Name"], "value": cookie["Value"], "url": url, "path": "/", "httpOnly": True})

    def console_errors(self) -> list[str]:
        """The console's SEVERE entries since the last call (JavaScript errors, failed loads)."""
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def wait(self, condition: Callable[[Any], Any], message: str, timeout: float = 60) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(condition, message)

    def find(self, css: str, text: str | None = None, timeout: float = 60, shown: bool = True) -> Any:
        """The first element matching ``css`` (shown, and containing ``text``), waiting until there is one.
        ``shown=False`` also finds inputs Bootstrap hides behind their styled stand-ins (switches)."""
        def found(driver: Any) -> Any:
            return driver.execute_script(_FIND, css, text, shown) or False

        return self.wait(found, f"{css} {text or ''} never appeared", timeout)

    def all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def gone(self, css: str, timeout: float = 60) -> None:
        self.wait(lambda d: not self.all(css), f"{css} never went away", timeout)

    def key(self, keys: str) -> None:
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.driver).send_keys(keys).perform()
