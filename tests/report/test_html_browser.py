"""The HTML report in a real browser: headless Chromium loads a run's report offline, every image
decodes (naturalWidth > 0) and nothing reaches the console (no errors, no blocked outside
resources). Skips where Chromium is not installed (``apt-get install chromium``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import grokscope
from grokscope.config import parse_config
from grokscope.report.html import CSP, run_report
from tests.conftest import tiny_config_data

BROWSERS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
BROWSER = next((b for b in BROWSERS if Path(b).is_file()), shutil.which("chromium"))
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=5000",
    "--dump-dom",
]

# Injected first into <head> of a copy of the page: records console errors and warnings, error
# events (scripts and failed resource loads, caught in the capture phase) and CSP violations,
# then after the load event writes the images' natural sizes and the records into the DOM.
PROBE = """<script>
(function () {
  var problems = [];
  ["error", "warn"].forEach(function (level) {
    var original = console[level];
    console[level] = function () {
      problems.push(level + ": " + Array.from(arguments).join(" "));
      original.apply(console, arguments);
    };
  });
  window.addEventListener("error", function (e) {
    problems.push("error event: " + (e.message || (e.target && (e.target.src || e.target.tagName))));
  }, true);
  document.addEventListener("securitypolicyviolation", function (e) { problems.push("csp: " + e.blockedURI); });
  window.addEventListener("load", function () {
    var images = Array.from(document.images).map(function (i) {
      return [i.complete, i.naturalWidth, i.naturalHeight];
    });
    var out = document.createElement("pre");
    out.id = "grokscope-test-result";
    out.textContent = JSON.stringify({images: images, problems: problems});
    document.body.appendChild(out);
  });
})();
</script>"""


def probed_copy(report: Path, folder: Path) -> Path:
    """The report with ``PROBE`` first in <head>; the CSP allows that one inline script."""
    text = report.read_text()
    assert text.count(CSP) == 1
    text = text.replace(CSP, CSP + "; script-src 'unsafe-inline'")
    text = text.replace("<head>", "<head>" + PROBE, 1)
    copy = folder / "probed.html"
    copy.write_text(text)
    return copy


@pytest.mark.skipif(BROWSER is None, reason="chromium not installed (Debian: apt-get install chromium)")
def test_report_loads_in_headless_chromium_with_its_figures_and_no_console_errors(tmp_path):
    probes = [{"name": "loss_accuracy"}, {"name": "weight_norm"}, {"name": "rpd", "max_samples": 40}]
    config = parse_config(tiny_config_data(probes=probes, training={"steps": 80}))
    run = grokscope.run(config, out=tmp_path / "run", progress=False)
    page = probed_copy(run_report(run), tmp_path)
    result = subprocess.run(
        [BROWSER, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'<pre id="grokscope-test-result">(.*?)</pre>', result.stdout, re.S)
    assert found, f"no result in the page (exit {result.returncode}): {result.stderr[-2000:]}"
    outcome = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    images = outcome["images"]
    assert len(images) >= 3  # the timeline and the rpd figures
    assert all(complete and width > 0 and height > 0 for complete, width, height in images), images
    assert outcome["problems"] == []
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
