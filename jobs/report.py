"""``avfuse report OUT --html report.html``: one self-contained page about a job's output.

Everything comes from the committed Parquet tables, ``_job.json`` and (for the timelines) the
decoder, so a report can be made for a finished or a running job without the model. Images
are inline PNGs; the page fetches nothing.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from pipeline.errors import JobError
from pipeline.plots import render_timeline, timeline_from_tables
from pipeline.sink import OutputDir


@dataclass
class JobTables:
    job: dict[str, Any]
    labels: list[str]
    videos: pa.Table
    segments: pa.Table | None
    events: pa.Table


def load_tables(out: str) -> JobTables:
    output = OutputDir(out)
    job = output.read_job()
    if job is None:
        raise JobError(f"{out}: no avfuse job output here (no _job.json)")

    def read(name: str, columns: list[str] | None = None) -> pa.Table | None:
        files = [f.path for f in output.committed_files(name)]
        if not files:
            return None
        return pads.dataset(files, format="parquet", filesystem=output.fs).to_table(columns=columns)

    videos = read("videos")
    if videos is None:
        raise JobError(f"{out}: nothing committed yet; run `avfuse status {out}` to follow the job")
    events = read("events")
    return JobTables(job, list(job.get("labels", [])), videos, read("segments"), events)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _bar_chart(counts: dict[str, int]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.35 * max(3, len(counts)) + 0.6))
    names = list(counts)[::-1]
    ax.barh(names, [counts[n] for n in names], color="#4c72b0")
    ax.set_xlabel("events")
    return _png(fig)


def _histogram(values: np.ndarray) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.6))
    if len(values):
        ax.hist(values, bins=min(30, max(5, len(values) // 3)), color="#55a868")
    ax.set_xlabel("event duration (s)")
    ax.set_ylabel("events")
    return _png(fig)


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1450px;color:#222;padding:0 1em}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0} td,th{padding:.25em .8em;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums} .failed{color:#b00} img{max-width:100%}
.muted{color:#777} nav a{margin-right:1em}
"""


def build_report(out: str, top: int = 5) -> str:
    """The report page as an HTML string."""
    t = load_tables(out)
    job, labels = t.job, t.labels
    v = t.videos.to_pydict()
    n_videos = len(v["video_id"])
    ok = sum(1 for s in v["status"] if s == "ok")
    failed = n_videos - ok
    total = job.get("counts", {}).get("videos_total")
    ev_labels = t.events.column("label").to_pylist() if t.events is not None else []
    per_label = Counter(ev_labels)
    durations = np.array(t.events.column("duration_s").to_pylist() if t.events is not None else [], float)
    runs = job.get("runs", [])

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>avfuse report: {html.escape(str(out))}</title>",
             f"<style>{CSS}</style></head><body>",
             f"<h1 id='top'>avfuse report</h1><p class='muted'>output <code>{html.escape(str(out))}</code>, job "
             f"{html.escape(str(job.get('job_id')))}, state <b>{html.escape(str(job.get('state')))}</b>, model "
             f"{html.escape(str(job.get('model', {}).get('id')))} ({html.escape(str(job.get('model', {}).get('fusion')))}), "
             f"updated {html.escape(str(job.get('updated_at')))}</p>",
             "<nav><a href='#videos'>videos</a><a href='#failures'>failures</a><a href='#events'>events</a>"
             "<a href='#throughput'>throughput</a><a href='#timelines'>timelines</a></nav>"]

    parts.append("<h2 id='videos'>Videos</h2><table>")
    for key, label, value in [("videos_total", "in the inputs", "?" if total is None else total),
                              ("videos_committed", "committed", n_videos), ("videos_ok", "ok", ok),
                              ("videos_failed", "failed", failed), ("events_total", "events", len(ev_labels))]:
        parts.append(f"<tr><td>{label}</td><td class='n' data-count='{key}'>{value}</td></tr>")
    parts.append("</table>")

    parts.append(f"<h2 id='failures'>Failures ({failed})</h2>")
    if failed:
        parts.append("<table><tr><th>video</th><th>error type</th><th>error</th></tr>")
        for i in range(n_videos):
            if v["status"][i] != "ok":
                parts.append(f"<tr class='failed' data-failed='{html.escape(v['video_id'][i])}'><td>"
                             f"{html.escape(v['video_id'][i])}</td><td>{html.escape(str(v['error_type'][i]))}</td>"
                             f"<td>{html.escape(str(v['error'][i]))}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>None.</p>")

    parts.append("<h2 id='events'>Events per label</h2><table><tr><th>label</th><th>events</th>"
                 "<th>median duration (s)</th></tr>")
    ev = t.events.to_pydict() if t.events is not None else {"label": [], "duration_s": []}
    for label in sorted(per_label, key=lambda k: -per_label[k]):
        d = [ev["duration_s"][i] for i, lab in enumerate(ev["label"]) if lab == label]
        parts.append(f"<tr><td>{html.escape(label)}</td><td class='n' data-label-count='{html.escape(label)}'>"
                     f"{per_label[label]}</td><td class='n'>{np.median(d):.2f}</td></tr>")
    parts.append("</table>")
    if per_label:
        parts.append(_img(_bar_chart(dict(per_label.most_common())), "events per label"))
    parts.append("<h2>Event durations</h2>")
    if len(durations):
        parts.append(f"<p>{len(durations)} events; median {np.median(durations):.2f} s, mean "
                     f"{durations.mean():.2f} s, longest {durations.max():.2f} s.</p>")
    parts.append(_img(_histogram(durations), "event durations"))

    parts.append("<h2 id='throughput'>Throughput</h2><table><tr><th>run</th><th>started</th><th>ok</th>"
                 "<th>failed</th><th>video s</th><th>wall s</th><th>video-s per wall-s</th></tr>")
    for i, r in enumerate(runs, 1):
        rate = (r.get("video_seconds", 0) / r["wall_s"]) if r.get("wall_s") else 0.0
        parts.append(f"<tr><td>{i}</td><td>{html.escape(str(r.get('started_at')))}</td><td class='n'>{r.get('ok', 0)}"
                     f"</td><td class='n'>{r.get('failed', 0)}</td><td class='n'>{r.get('video_seconds', 0):.1f}</td>"
                     f"<td class='n'>{r.get('wall_s', 0):.1f}</td><td class='n'>{rate:.2f}</td></tr>")
    parts.append("</table>")

    n_events = dict(zip(v["video_id"], v["n_events"]))
    ranked = sorted((vid for vid, s in zip(v["video_id"], v["status"]) if n_events.get(vid)),
                    key=lambda vid: (-n_events[vid], vid))[:top]
    parts.append(f"<h2 id='timelines'>Timelines: top {len(ranked)} videos by events</h2><ol>")
    for i, vid in enumerate(ranked):
        parts.append(f"<li><a href='#video-{i}'>{html.escape(vid)}</a> ({n_events[vid]} events)</li>")
    parts.append("</ol>")
    paths = dict(zip(v["video_id"], v["path"]))
    for i, vid in enumerate(ranked):
        filt = pc.field("video_id") == vid
        tables = {"segments": t.segments.filter(filt) if t.segments is not None else None,
                  "events": t.events.filter(filt)}
        try:
            png = base64.b64encode(render_timeline(timeline_from_tables(tables, labels, vid, paths[vid]))).decode()
            body = _img(png, f"timeline of {vid}")
        except Exception as exc:  # noqa: BLE001 - a moved or unreadable video: say so, keep the page
            body = f"<p class='failed'>timeline unavailable: {html.escape(str(exc))}</p>"
        parts.append(f"<h3 id='video-{i}'>{html.escape(vid)}</h3>{body}<p><a href='#timelines'>back to the list</a>"
                     f" · <a href='#top'>top</a></p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(out: str, path: str | Path, top: int = 5) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(build_report(out, top), encoding="utf-8")
    return path
