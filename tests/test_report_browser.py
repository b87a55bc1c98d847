"""report.html in a real headless Chromium: no console errors, every image loads, the tables are there,
nothing is fetched from the network; a full-page screenshot is saved beside the report.

Skips (saying why) where no Chromium-family browser is installed; `.ci/run` installs one from the system
package manager when it can.
"""

import re

import pytest

from edgetune.report.browser import BROWSERS, check_page, find_browser
from edgetune.report.html import FIGURE_FILES, write_report
from tests.test_report import PNG_MAGIC, full_data

pytestmark = pytest.mark.skipif(find_browser() is None, reason="no Chromium-family browser installed (looked for "
                                + ", ".join(BROWSERS) + "; `apt-get install chromium` provides one)")


def test_report_in_headless_chromium(tmp_path):
    run = tmp_path / "run"
    html = write_report(full_data(), run)
    page = html.read_text()
    # offline: no external URL in any src/href, and (below) no request other than the file and data URIs
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    check = check_page(html, run / "screenshot.png")
    assert check.errors == []
    assert len(check.images) == len(FIGURE_FILES) and all(ok for _, ok in check.images), check.images
    assert check.tables >= 6
    assert {"Summary", "End-to-end comparison", "Search", "Latency–memory trade-off"} <= set(check.headings)
    assert check.requests and all(u.startswith(("file://", "data:")) for u in check.requests), check.requests
    shot = (run / "screenshot.png").read_bytes()
    assert shot.startswith(PNG_MAGIC) and len(shot) > 20_000


def test_a_broken_image_is_caught(tmp_path):
    html = tmp_path / "broken.html"
    html.write_text('<!DOCTYPE html><html><body><table><tr><td>x</td></tr></table>'
                    '<img src="missing.png" alt="gone"></body></html>')
    check = check_page(html)
    assert check.images == [("missing.png", False)] and check.tables == 1
    assert check.errors, "a failed image load must show up as an error"


def test_tune_saves_report_png_beside_the_report(tmp_path):
    from edgetune.commands.tune import _check_report

    html = write_report(full_data(), tmp_path / "run")
    res = _check_report(str(html), console=None)
    assert res is not None and res["screenshot"] == str(tmp_path / "run" / "report.png")
    assert (tmp_path / "run" / "report.png").read_bytes().startswith(PNG_MAGIC)
    assert res["console_errors"] == [] and res["broken_images"] == [] and res["tables"] >= 6
