"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against the app served for real.

The app runs in a thread with its embedded worker and scheduler, and serves its own simulator, so jobs
advance by themselves exactly as with ``make run``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import base_config
from tests.dashboard.conftest import REVIEWS, chat_line, csv_file, jsonl_file
from webapp import ROOT, create_app
from webapp.extensions import db

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"
FAST = {"SIMULATOR_IN_PROGRESS_SECONDS": 1.0}
MAKE_RUN_TIMING = {  # the defaults: webapp/config.py and simulator/settings.py
    "SIMULATOR_VALIDATING_SECONDS": 1.0,
    "SIMULATOR_IN_PROGRESS_SECONDS": 5.0,
    "SIMULATOR_FINALIZING_SECONDS": 1.0,
    "SYNC_INTERVAL_SECONDS": 5,
}
WIDTHS = (1280, 390)
if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed at /usr/bin/chromium; `make test` installs it when run as root "
        "(apt-get install -y chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="Python playwright is not installed (requirements-dev)")
expect = sync_api.expect


class LiveApp:
    """The whole app on a real port in a daemon thread; its simulator provider is that same server."""

    def __init__(self, tmp: Path):
        self.httpd = make_server("127.0.0.1", 0, lambda environ, start: [], threaded=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.app = create_app(
            base_config(
                tmp,
                REDIS_URL=None,
                EMBEDDED_WORKERS=True,
                SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp / 'live.db'}",
                SYNC_INTERVAL_SECONDS=1,
                SIMULATOR_BASE_URL=f"{self.url}/simulator/v1",
                SIMULATOR_IN_PROGRESS_SECONDS=1.0,
            )
        )
        with self.app.app_context():
            db.create_all()
        self.httpd.app = self.app
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.thread.join(5)
        self.app.extensions["batches_embedded_runtime"].stop()
        with self.app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = LiveApp(tmp_path_factory.mktemp("live"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chromium():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live):
    context = chromium.new_context(base_url=live.url, viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # A 4xx page (422 for a rejected file) is logged as "Failed to load resource"; that is no script error.
    page.on(
        "console",
        lambda msg: errors.append(msg.text)
        if msg.type == "error" and not msg.text.startswith("Failed to load resource")
        else None,
    )
    sign_in(page)
    yield page
    context.close()
    assert not errors, f"the page reported errors: {errors}"


ADMIN = {"email": "analyst@example.com", "password": "a long enough password"}


def sign_in(page) -> None:
    """The first visit of the module creates the admin through the setup page; later ones sign in."""
    page.goto("/jobs")
    if "/setup" in page.url:
        page.fill("#email", ADMIN["email"])
        page.fill("#password", ADMIN["password"])
        page.fill("#confirm", ADMIN["password"])
        page.click("button[type=submit]")
    else:
        page.fill("#email", ADMIN["email"])
        page.fill("#password", ADMIN["password"])
        page.click("button[type=submit]")
    page.wait_for_url("**/jobs")


@pytest.fixture
def settings(live):
    """Change some of the live app's settings for one test (key by key: its threads read them meanwhile)."""
    saved: dict = {}

    def change(**values):
        for key in values:
            saved.setdefault(key, live.app.config.get(key))
        live.app.config.update(values)

    yield change
    live.app.config.update(saved)


def mark_page(page) -> None:
    """Tag the loaded document, so a later check can tell that the page was never reloaded."""
    page.evaluate("document.documentElement.dataset.testMark = 'same-page'")


def assert_not_reloaded(page) -> None:
    assert page.evaluate("document.documentElement.dataset.testMark") == "same-page"


def test_csv_job_from_upload_to_download(page, tmp_path):
    page.goto("/jobs")
    page.get_by_role("link", name="New job").first.click()
    page.get_by_label("Name").fill("Product reviews")
    page.get_by_label("Requests file").set_input_files(
        files=[{"name": "reviews.csv", "mimeType": "text/csv", "buffer": csv_file(REVIEWS)}]
    )
    page.get_by_role("button", name="Continue").click()

    expect(page.locator(".mapping")).to_contain_text("Found 3 rows and 3 columns")
    page.get_by_label("Prompt template").fill("Classify this review: {{ Text }}")
    page.get_by_label("ID column (optional)").select_option("Id")
    preview = page.locator("#csv-preview")
    expect(preview).to_contain_text("Classify this review: Très bien — mais un peu cher.")
    expect(preview).to_contain_text("r2")
    expect(preview).to_contain_text("Estimated cost")
    page.get_by_label("Prompt template").fill("Classify this review: {{ Txt }}")
    expect(preview).to_contain_text("no column named 'Txt'")
    page.get_by_label("Prompt template").fill("Classify this review: {{ Text }}")
    expect(preview).to_contain_text("Classify this review: Great, really great")

    page.get_by_role("button", name="Create job").click()
    expect(page.locator(".flash-success")).to_contain_text("Created the job with 3 requests")
    expect(page.locator("#job-status .badge")).to_have_text("draft")
    page.get_by_role("button", name="Submit 3 requests").click()
    expect(page.locator(".flash-success")).to_contain_text("Submitted")
    mark_page(page)
    expect(page.locator("#job-status .badge").first).to_have_text("completed", timeout=30_000)
    expect(page.locator("#job-status .phase")).to_have_text("Completed")
    expect(page.locator("#job-status")).to_contain_text("3 of 3 requests answered")
    expect(page.locator(".flash-success")).to_have_count(0)  # "Submitted" went with the job's last poll
    expect(page.locator(".recipe")).to_contain_text("Classify this review: {{ Text }}")
    assert_not_reloaded(page)

    with page.expect_download() as download:
        page.locator(".downloads").get_by_role("button", name="CSV", exact=True).click()
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert header[:5] == ["Id", "Text", "Stars", "custom_id", "status"]
    assert [row[:3] for row in rows] == REVIEWS
    assert [row[3:5] for row in rows] == [["r1", "succeeded"], ["r2", "succeeded"], ["r3", "succeeded"]]


def test_jsonl_with_bad_lines_shows_each_line_and_can_skip_them(page, settings):
    settings(BATCH_MAX_BYTES=2000)
    lines = [
        chat_line("a", "fine"),
        "{not json",
        json.dumps({"method": "POST", "url": "/v1/chat/completions", "body": {"messages": []}}),
        chat_line("a", "again"),
        chat_line("b", "hi", url="/v1/embeddings"),
        chat_line("c", "hi", body={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
        chat_line("d", "x" * 3000),
        chat_line("e", "also fine"),
    ]
    page.goto("/jobs/new")
    page.get_by_label("Name").fill("Tickets")
    page.get_by_label("Requests file").set_input_files(
        files=[{"name": "tickets.jsonl", "mimeType": "application/jsonl", "buffer": jsonl_file(lines)}]
    )
    page.get_by_role("button", name="Continue").click()

    problems = page.locator(".upload-problems")
    expect(problems).to_contain_text("6 lines of tickets.jsonl cannot be used. Nothing was stored.")
    rows = problems.locator("tbody tr")
    expect(rows).to_have_count(6)
    found = [(row.locator("td").nth(0).inner_text(), row.locator("td").nth(2).inner_text()) for row in rows.all()]
    assert found == [
        ("2", "invalid_json_line"),
        ("3", "missing_custom_id"),
        ("4", "duplicate_custom_id"),
        ("5", "url_mismatch"),
        ("6", "model_mismatch"),
        ("7", "line_too_large"),
    ]
    expect(page.get_by_label("Name")).to_have_value("Tickets")

    page.get_by_role("button", name="Skip the 6 invalid lines and create the job").click()
    expect(page.locator(".flash-success")).to_contain_text("Created the job with 2 requests; skipped 6")


def test_cancel_asks_first_and_counts_the_stopped_requests_as_cancelled(page, live, settings):
    settings(SIMULATOR_IN_PROGRESS_SECONDS=120, SIMULATOR_CANCELLING_SECONDS=3)
    page.goto("/jobs/new")
    page.get_by_label("Name").fill("Long job")
    page.get_by_label("Requests file").set_input_files(
        files=[
            {
                "name": "long.jsonl",
                "mimeType": "application/jsonl",
                "buffer": jsonl_file([chat_line(f"n-{i}", f"item {i}") for i in range(5)]),
            }
        ]
    )
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Submit 5 requests").click()
    expect(page.locator(".flash-success")).to_contain_text("Submitted")  # the job page has loaded
    mark_page(page)
    expect(page.locator("#job-status .badge").first).to_have_text("running", timeout=20_000)
    expect(page.locator("#job-status .phase")).to_contain_text("Running")
    expect(page.locator("#job-status")).to_contain_text("Deadline")
    assert_not_reloaded(page)

    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Cancel job…").click()
    expect(page.locator("#job-status .badge").first).to_have_text("running")  # "no": nothing was sent
    assert questions and questions[0].startswith("Cancel the job “Long job”?")
    assert "will be cancelled" in questions[0] and "Results already in are kept" in questions[0]
    assert_not_reloaded(page)

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel job…").click()
    expect(page.locator(".flash-success")).to_contain_text("Cancelling: running batches are being stopped")
    page.get_by_role("banner").get_by_role("link", name="Jobs", exact=True).click()
    row = page.locator("tr.job-row", has_text="Long job")
    expect(row.locator(".badge")).to_have_text("cancelling")
    mark_page(page)
    expect(row.locator(".badge")).to_have_text("cancelled", timeout=20_000)  # the row refreshes itself
    expect(row).to_contain_text("5 cancelled")
    assert_not_reloaded(page)

    row.get_by_role("link", name="Long job").click()
    status = page.locator("#job-status")
    expect(status.locator(".phase")).to_have_text("Cancelled")
    expect(stat(page, "Cancelled")).to_have_text("5")
    expect(stat(page, "Failed")).to_have_text("0")
    expect(status).to_contain_text("0 of 5 requests answered, 5 cancelled before they ran.")
    expect(page.get_by_role("button", name="Retry", exact=False)).to_have_count(0)  # nothing failed

    settings(SIMULATOR_IN_PROGRESS_SECONDS=1.0)
    page.get_by_role("button", name="Send the 5 cancelled requests again").click()
    expect(page.locator(".flash-success")).to_contain_text("Sending 5 cancelled requests again.")
    mark_page(page)
    expect(status.locator(".phase")).to_have_text("Completed", timeout=30_000)
    expect(status).to_contain_text("5 of 5 requests answered.")
    expect(stat(page, "Succeeded")).to_have_text("5")
    expect(page.locator(".flash-success")).to_have_count(0)  # the message of the resend ended with the job
    assert_not_reloaded(page)


def stat(page, label: str):
    """The value of the job page's stat card ``label``."""
    return page.locator(".stat", has=page.locator(".stat-label", has_text=label)).locator(".stat-value")


def test_the_pages_look_right_at_1280_and_390_px(page, live, settings, tmp_path):
    """A CSV job with a schema, one row failing for good: the job, new-job and request pages at both widths.

    Each is checked for the defects once seen (a stat card alone on its line, JSON squashed onto one line,
    dates wrapping, a tall mobile header, a badge under 4.5:1, no keyboard focus on the file picker), and
    screenshotted into the test's folder, and into docs/screenshots/ with UPDATE_SCREENSHOTS=1.
    """
    running = {**{name: live.app.config[name] for name in MAKE_RUN_TIMING}, **FAST}
    settings(**MAKE_RUN_TIMING)  # the new-job page says how long the simulator takes: as `make run` has it
    rows = [*REVIEWS, ["r4", "Arrived broken, box crushed [[sim:error=server_error]]", "1"]]
    page.goto("/jobs/new")
    page.get_by_label("Name").fill("Product reviews, March")
    page.get_by_label("Retries per failed request").fill("0")
    page.get_by_label("Requests file").set_input_files(
        files=[{"name": "reviews.csv", "mimeType": "text/csv", "buffer": csv_file(rows)}]
    )
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Prompt template").fill("Classify the sentiment of this review: {{ Text }}")
    page.get_by_label("System prompt (optional)").fill("You are a careful analyst.")
    page.get_by_label("ID column (optional)").select_option("Id")
    page.get_by_label("JSON schema for structured output (optional)").fill(
        '{"type": "object", "properties": {"sentiment": {"type": "string", "enum": ["positive", "neutral", '
        '"negative"]}, "reason": {"type": "string"}}, "required": ["sentiment"]}'
    )
    expect(page.locator("#csv-preview")).to_contain_text("Estimated cost")
    expect(page.get_by_text("about 7–12 s after you submit")).to_be_visible()
    focus_by_keyboard(page, "#file")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    assert float(page.evaluate("parseFloat(getComputedStyle(document.activeElement).outlineWidth)")) >= 2
    shoot(page, "new-job", tmp_path)

    settings(**running)
    page.get_by_role("button", name="Create job").click()
    page.get_by_role("button", name="Submit 4 requests").click()
    expect(page.locator("#job-status .phase")).to_have_text("Completed with errors", timeout=30_000)
    page.reload()  # as someone who comes back to it later
    badge = page.locator("#job-status .badge").first
    assert contrast(page, badge) >= 4.5
    expect(page.locator(".failures")).to_contain_text("The provider's servers had an internal error.")
    shoot(page, "job", tmp_path)

    page.goto(page.url + "/requests?status=failed")
    page.goto(page.locator("details.request").first.get_attribute("hx-get"))
    expect(page.locator(".error-words")).to_contain_text("temporary")
    shoot(page, "request", tmp_path)

    page.goto("/jobs")
    page.set_viewport_size({"width": 1280, "height": 900})
    created = page.locator("tr.job-row time").first
    assert page.evaluate("(el) => el.getClientRects().length", created.element_handle()) == 1  # one line
    table = page.locator(".overflow-auto", has=page.locator(".jobs-table"))
    assert table.evaluate("(el) => el.scrollWidth <= el.clientWidth")  # every column shows, Created included


def focus_by_keyboard(page, selector: str) -> None:
    """Tab until ``selector`` has the focus, as a keyboard user would reach it."""
    page.locator("body").focus()
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement === document.querySelector(s)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with the keyboard")


def shoot(page, name: str, tmp_path: Path) -> None:
    """Check the page's layout at each width and save a full-page screenshot of it."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert_laid_out(page, width)
        path = tmp_path / f"{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        if os.environ.get("UPDATE_SCREENSHOTS"):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, SCREENSHOTS / path.name)
    page.set_viewport_size({"width": 1280, "height": 900})


def assert_laid_out(page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing sticks out sideways
    assert page.evaluate("document.querySelector('header').getBoundingClientRect().height") < 130
    for block in page.locator("pre.json").all():  # pretty JSON keeps its lines
        assert block.evaluate("(el) => el.scrollWidth <= el.clientWidth + 1")
    lonely = page.evaluate(
        """() => [...document.querySelectorAll('.stats')].flatMap((grid) => {
            const cards = [...grid.children], rows = {};
            cards.forEach((card) => (rows[Math.round(card.offsetTop)] ||= []).push(card));
            return Object.values(rows).filter((row) => cards.length > 1 && row.length === 1
                && row[0].offsetWidth < grid.clientWidth - 2).map((row) => row[0].innerText);
        })"""
    )
    assert lonely == [], f"a stat card alone on its line at {width} px: {lonely}"


def contrast(page, locator) -> float:
    """WCAG contrast ratio of an element's text colour against its background colour."""
    colours = locator.evaluate(
        "(el) => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]"
        ".map((c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number))"
    )

    def luminance(rgb) -> float:
        linear = [(c / 255 / 12.92) if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted(map(luminance, colours), reverse=True)
    return (light + 0.05) / (dark + 0.05)


HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def test_the_api_documentation_shows_every_operation(page):
    """Swagger UI renders under the site's CSP (a blocked script or style would be a console error)."""
    document = page.request.get("/api/v1/openapi.json").json()
    operations = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item if method in HTTP_METHODS
    }
    page.goto("/api/v1/swagger")
    summaries = page.locator(".opblock-summary")
    expect(summaries).to_have_count(len(operations))
    shown = {
        (
            summary.locator(".opblock-summary-method").inner_text(),
            summary.locator(".opblock-summary-path").get_attribute("data-path"),
        )
        for summary in summaries.all()
    }
    assert shown == operations
    expect(page.locator(".swagger-ui .info .title")).to_contain_text(document["info"]["title"])
    page.locator(".opblock-summary", has_text="/api/v1/jobs/{job_id}/requests").first.click()
    expect(page.get_by_role("button", name="Try it out")).to_be_visible()


PICKER_SCREENSHOT = ROOT / "docs" / "screenshots" / "model-picker.png"


def test_the_model_picker_shows_prices_and_asks_before_an_unknown_model(page, tmp_path):
    page.goto("/jobs/new")
    model = page.get_by_label("Model", exact=True)
    offered = page.locator("datalist#models option[value='gpt-4o-mini']")
    expect(offered).to_have_attribute("label", "$0.075 in, $0.30 out per million tokens (batch)")
    expect(page.locator("datalist#models option[value='gpt-3.5-turbo-instruct']")).to_have_count(1)  # the simulator's
    expect(page.locator("#model-price")).to_contain_text("gpt-4o-mini: $0.075 in, $0.30 out per million tokens")
    mark_page(page)

    model.fill("o4-mini")
    expect(page.locator("#model-price")).to_contain_text("o4-mini: $0.55 in, $2.20 out per million tokens")
    page.get_by_text("Models and batch prices").click()
    row = page.locator(".model-prices tr", has=page.locator("code", has_text="gpt-4o-mini-2024-07-18"))
    expect(row).to_contain_text("$0.075")
    expect(row).to_contain_text("price table, Simulator's list")

    model.fill("gpt4o-mini")
    warning = page.locator("#model-warning")
    expect(page.locator(".model-prices")).to_have_attribute("open", "")  # typing leaves the open list open
    expect(warning).to_contain_text("gpt4o-mini is neither in the price table nor in Simulator's model list")
    expect(warning).to_contain_text("Did you mean gpt-4o-mini?")
    confirm = page.get_by_label("Use this model anyway")
    expect(confirm).not_to_be_checked()
    assert_not_reloaded(page)
    page.get_by_label("Name").fill("Typo or not")
    lines = [chat_line("t-1", "hi", body={"model": "gpt4o-mini", "messages": [{"role": "user", "content": "hi"}]})]
    page.get_by_label("Requests file").set_input_files(
        files=[{"name": "typo.jsonl", "mimeType": "application/jsonl", "buffer": jsonl_file(lines)}]
    )
    page.get_by_role("button", name="Continue").click()

    expect(page.locator(".error-summary")).to_contain_text("Did you mean gpt-4o-mini?")
    expect(page.locator("#model-error")).to_contain_text("gpt4o-mini is not in the price table")
    expect(model).to_have_value("gpt4o-mini")
    expect(page.locator("#model-warning")).to_be_visible()
    save_picker_screenshot(page, tmp_path)
    page.get_by_label("Use this model anyway").check()
    page.get_by_role("button", name="Create job").click()
    expect(page.locator(".flash-success")).to_contain_text("Created the job with 1 request.")
    expect(page.locator("main")).to_contain_text("gpt4o-mini")


def save_picker_screenshot(page, tmp_path: Path) -> None:
    """The model part of the form, into the test's folder; into docs/ too when UPDATE_SCREENSHOTS is set."""
    shot = tmp_path / PICKER_SCREENSHOT.name
    page.locator("fieldset", has=page.locator("#model")).screenshot(path=str(shot))
    if os.environ.get("UPDATE_SCREENSHOTS"):
        shutil.copyfile(shot, PICKER_SCREENSHOT)


# --- the analyst's spreadsheet round trip --------------------------------------------------------------------

PANDAS_ROWS = [["Ann", "-12.50"], ["Bob", "3.25"], ["Cid", "100"], ["Dee", "-0.75"]]


def pandas_csv() -> bytes:
    """What ``df.to_csv()`` writes: the index as an unnamed first column, numbers as the frame held them."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["", "name", "amount"])
    writer.writerows([index, *row] for index, row in enumerate(PANDAS_ROWS))
    return out.getvalue().encode()


def round_trip(page, filename: str, content: bytes, mime: str, template: str, *, sheet: str | None = None):
    """Upload a table through the new-job page, create and submit the job, wait until it completes."""
    page.goto("/jobs/new")
    page.get_by_label("Name").fill(f"Round trip of {filename}")
    page.get_by_label("Requests file").set_input_files(files=[{"name": filename, "mimeType": mime, "buffer": content}])
    page.get_by_role("button", name="Continue").click()
    if sheet:
        page.get_by_label("Sheet").select_option(sheet)
        page.get_by_role("button", name="Use this sheet").click()
        expect(page.locator(".mapping")).to_contain_text(f"in the sheet “{sheet}”")
        expect(page.locator("#csv-preview")).to_contain_text("Write a prompt template")
        page.wait_for_load_state("load")  # htmx set up on the new page before the template is typed
    page.get_by_label("Prompt template").fill(template)
    expect(page.locator("#csv-preview")).to_contain_text("Estimated cost")
    page.get_by_role("button", name="Create job").click()
    expect(page.locator(".flash-success")).to_contain_text("Created the job with 4 requests")
    page.get_by_role("button", name="Submit 4 requests").click()
    expect(page.locator("#job-status .badge").first).to_have_text("completed", timeout=30_000)


def downloaded(page, name: str) -> Path:
    with page.expect_download() as download:
        page.locator(".downloads").get_by_role("button", name=name, exact=True).click()
    return Path(download.value.path())


def xlsx_rows(path: Path) -> list[list]:
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(path.read_bytes()), read_only=True)  # the download has no suffix
    rows = [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]
    book.close()
    return rows


def test_a_pandas_csv_comes_back_with_its_numbers_as_numbers(page):
    page.goto("/jobs/new")
    round_trip(page, "frame.csv", pandas_csv(), "text/csv", "How does {{ name }} feel about {{ amount }}?")
    expected = sum(float(amount) for _, amount in PANDAS_ROWS)

    header, *rows = list(csv.reader(io.StringIO(downloaded(page, "CSV").read_text(encoding="utf-8-sig"))))
    assert header[:3] == ["column_1", "name", "amount"]
    assert [row[:3] for row in rows] == [[str(i), *row] for i, row in enumerate(PANDAS_ROWS)]
    assert sum(float(row[2]) for row in rows) == pytest.approx(expected)

    header, *rows = xlsx_rows(downloaded(page, "Excel (.xlsx)"))
    assert header[:5] == ["column_1", "name", "amount", "custom_id", "status"]
    amounts = [row[2] for row in rows]
    assert amounts == [-12.5, 3.25, 100, -0.75]  # numbers, not "'-12.50" text
    assert all(isinstance(value, int | float) for value in amounts)
    assert sum(amounts) == pytest.approx(expected)
    assert [row[4] for row in rows] == ["succeeded"] * 4


def test_an_xlsx_upload_from_a_chosen_sheet_comes_back_as_xlsx(page):
    from tests.workbooks import xlsx_bytes

    figures = [["Ann", -12.5, 7], ["Bob", 3.25, 8], ["Cid", 100, 9], ["Dee", -0.75, 10]]
    book = xlsx_bytes({"Notes": [["note"], ["not these"]], "Figures": [["name", "amount", "qty"], *figures]})
    mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    round_trip(page, "figures.xlsx", book, mime, "{{ name }} spent {{ amount }} on {{ qty }} items", sheet="Figures")
    expect(page.locator(".recipe")).to_contain_text("sheet “Figures”")

    header, *rows = xlsx_rows(downloaded(page, "Excel (.xlsx)"))
    assert header[:3] == ["name", "amount", "qty"]
    assert [row[:3] for row in rows] == figures
    assert sum(row[1] for row in rows) == pytest.approx(sum(f[1] for f in figures))

    header, *rows = list(csv.reader(io.StringIO(downloaded(page, "CSV").read_text(encoding="utf-8-sig"))))
    assert sum(float(row[1]) for row in rows) == pytest.approx(sum(f[1] for f in figures))
