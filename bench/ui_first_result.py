"""How long the chat UI takes to show the first result for a 30 s clip.

Starts `mixpilot ui` with a fresh data dir, drives Debian's chromium (Playwright) through
upload → "clean and master this in a pop style" → result (metrics table + after player), and
prints the times: upload to "ready", send to plan shown, send to result. Each run is a fresh
page (a new conversation); the first run also pays the server's lazy imports.

    .venv/bin/python bench/ui_first_result.py [--runs 3] [--clip FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = REPO.parent / "shared" / "fixtures" / "music" / "Karissa_Hobbs_-_Lets_Go_Fishin.flac"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--request", default="clean and master this in a pop style")
    args = ap.parse_args()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists() or not args.clip.exists():
        print(f"needs chromium and the clip ({args.clip})", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    from tools.audio import load

    print(f"clip: {args.clip.name} ({load(args.clip).duration_s:.1f} s)")
    data = Path(tempfile.mkdtemp(prefix="mixpilot-bench-ui-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, MIXPILOT_DATA_DIR=str(data), GRADIO_ANALYTICS_ENABLED="False")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "ui", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() - t0 > 120:
                    print("server did not start", file=sys.stderr)
                    return 1
                time.sleep(0.2)
        print(f"server start: {time.monotonic() - t0:.1f} s")
        uploads, plans, results = [], [], []
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(data / "profile"), executable_path=chromium, headless=True, args=ARGS
            )
            page = ctx.new_page()
            page.set_default_timeout(300_000)
            for i in range(args.runs):
                page.goto(url)
                page.wait_for_selector("#mp-song input[type=file]", state="attached")
                t = time.monotonic()
                page.locator("#mp-song input[type=file]").set_input_files(str(args.clip))
                page.wait_for_function("document.querySelector('#mp-chat').innerText.includes('Got ')")
                uploads.append(time.monotonic() - t)
                page.locator("#mp-msg textarea").fill(args.request)
                t = time.monotonic()
                page.locator("#mp-send").click()
                page.wait_for_function("document.querySelector('#mp-chat').innerText.includes('Plan')")
                plans.append(time.monotonic() - t)
                page.locator("#mp-metrics-table tr[data-key=integrated_lufs]").wait_for()
                page.locator("#mp-after a[data-testid=download-link]").wait_for()
                results.append(time.monotonic() - t)
                print(
                    f"run {i + 1}: upload→ready {uploads[-1]:.1f} s, send→plan {plans[-1]:.1f} s, "
                    f"send→result {results[-1]:.1f} s"
                )
            ctx.close()
        print(
            f"median over {args.runs}: upload→ready {statistics.median(uploads):.1f} s, "
            f"send→plan {statistics.median(plans):.1f} s, send→result {statistics.median(results):.1f} s "
            f"(first run {results[0]:.1f} s)"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
