"""Remake the README's images: a timeline PNG and a screenshot of a job report.

    python docs/make_images.py        (needs the chromium binary for the screenshot)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT / "sample_media" / "clips"


def avfuse(*args: object) -> None:
    subprocess.run([sys.executable, "-m", "jobs.cli", *map(str, args)], cwd=ROOT, check=False)


def main() -> None:
    avfuse("detect", CLIPS / "clip_7_0001.webm", "--plot", ROOT / "docs" / "timeline.png",
           "--annotations", CLIPS / "annotations_ave.txt")
    with tempfile.TemporaryDirectory() as tmp:
        out, page = Path(tmp) / "results", Path(tmp) / "report.html"
        avfuse("run", ROOT / "sample_media", "--out", out)
        avfuse("report", out, "--html", page, "--top", "3")
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            raise SystemExit("chromium is needed for the report screenshot (apt-get install chromium)")
        subprocess.run([exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--disable-background-networking", "--window-size=1400,2300",
                        f"--user-data-dir={tmp}/profile", f"--screenshot={ROOT / 'docs' / 'report.png'}",
                        page.as_uri()], check=True, capture_output=True, env={**os.environ, "TMPDIR": tmp})


if __name__ == "__main__":
    main()
