"""The web page at GET / in real headless Chromium (Debian's chromium + chromedriver, driven by Selenium):
type a task, watch the answer stream in with its tool calls and final cost; a dropped connection resumes."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from .agents import wait_task
from .conftest import DEADLINE_S, KEY_A, Served

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "out"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (bash scripts/system-packages.sh installs them)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    profile = tempfile.mkdtemp(prefix="agentwatch-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1100,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(browser: WebDriver, served: Served, task: str) -> None:
    browser.get(served.url + "/")
    browser.find_element(By.TAG_NAME, "summary").click()  # open the connection settings
    key = browser.find_element(By.ID, "api-key")
    key.clear()
    key.send_keys(KEY_A)
    browser.execute_script("document.getElementById('api-key').dispatchEvent(new Event('change'))")
    box = browser.find_element(By.ID, "task")
    box.clear()
    box.send_keys(task)
    browser.find_element(By.ID, "run").click()


def final_cost(browser: WebDriver) -> str:
    return str(
        WebDriverWait(browser, DEADLINE_S).until(
            lambda d: (d.find_elements(By.ID, "cost") or [None])[0] and d.find_element(By.ID, "cost").text
        )
    )


def test_type_a_task_and_watch_the_answer_stream_in_with_its_cost(browser: WebDriver, served: Served) -> None:
    open_page(browser, served, "What is 1234 * 5678?")
    cost = final_cost(browser)
    assert "stop: end_turn" in cost and "cost: $0.0" in cost
    assert "7,006,652" in browser.find_element(By.ID, "answer").text
    assert "calculator" in browser.find_element(By.ID, "tools").text
    link = browser.find_element(By.ID, "trace-link").get_attribute("href") or ""
    assert link.startswith(served.settings.jaeger_url + "/trace/") and len(link.rsplit("/", 1)[1]) == 32
    assert browser.execute_script("return sessionStorage.getItem('api-key')") == KEY_A
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "serve-page.png"))


def test_the_page_resumes_a_run_after_a_dropped_connection(browser: WebDriver, served: Served) -> None:
    open_page(browser, served, wait_task(1.5))
    WebDriverWait(browser, DEADLINE_S).until(lambda d: "wait(" in d.find_element(By.ID, "tools").text)
    browser.execute_script("window.agentwatchPage.dropConnection()")
    cost = final_cost(browser)
    assert "stop: end_turn" in cost
    assert browser.execute_script("return window.agentwatchPage.state.retries") >= 1
    assert "waited 1.5 s" in browser.find_element(By.ID, "tools").text


def test_the_page_shows_the_services_error_for_a_wrong_key(browser: WebDriver, served: Served) -> None:
    browser.get(served.url + "/")
    browser.execute_script("sessionStorage.setItem('api-key', 'not-a-valid-key-at-all')")
    browser.refresh()
    browser.find_element(By.ID, "run").click()
    status = WebDriverWait(browser, DEADLINE_S).until(
        lambda d: (
            "error" in (d.find_element(By.ID, "status").get_attribute("class") or "")
            and d.find_element(By.ID, "status").text
        )
    )
    assert "Authorization: Bearer" in status and "not-a-valid-key" not in status
