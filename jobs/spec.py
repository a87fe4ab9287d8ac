"""Job spec and input manifest: what a batch job reads, validated before any work starts.

INPUTS may mix local folders (searched recursively), globs, text files listing one
path or URI per line, single files, and URIs ``pyarrow.fs`` opens (``s3://``, ``gs://``,
``hdfs://``; a URI ending in ``/`` or naming a prefix is listed recursively).

Every input video gets a ``video_id``: its path relative to the folder (or glob root)
it was found under, or the entry exactly as a list file or the command line gave it.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from pipeline.annotations import VIDEO_EXTENSIONS
from pipeline.errors import ConfigError
from pipeline.media import is_uri

LIST_EXTENSIONS = (".txt", ".lst", ".list")


@dataclass(frozen=True)
class InputVideo:
    video_id: str
    path: str  # local path or URI
    size: int
    mtime: float


@dataclass(frozen=True)
class JobSpec:
    """Everything that defines a batch job's output (``out`` aside)."""

    inputs: tuple[str, ...]
    out: str
    model: str | None = None  # None: the bundled default model
    address: str | None = None
    decode_workers: int = 0  # 0: derived from the cluster's CPUs and GPUs
    batch_size: int = 0  # windows per model call; 0: by device (pipeline.config.BATCH_WINDOWS)
    device: str = "auto"
    embeddings: bool = False
    commit_every: int = 16  # videos per committed unit of work
    overwrite: bool = False
    max_retries: int = 2  # retries of a video whose decode process died

    def problems(self) -> list[str]:
        out: list[str] = []
        if not self.inputs:
            out.append("no INPUTS given: pass folders, globs, list files or URIs")
        if not self.out:
            out.append("--out is required")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            out.append(f"--device must be auto, cpu or cuda, not {self.device!r}")
        if self.batch_size < 0:
            out.append(f"--batch-size must be >= 1 (or 0 for the device's default), not {self.batch_size}")
        if self.decode_workers < 0:
            out.append(f"--decode-workers must be >= 0, not {self.decode_workers}")
        if self.commit_every < 1:
            out.append("--commit-every must be >= 1")
        if self.model is not None and not is_uri(self.model) and not Path(self.model).is_file():
            out.append(f"--model {self.model}: file not found")
        return out

    def identity(self, model_sha256: str) -> dict[str, Any]:
        """What must match for a re-run on the same OUT to resume rather than start over."""
        return {
            "inputs": [normalise_input(i) for i in self.inputs],
            "model_sha256": model_sha256,
            "embeddings": self.embeddings,
        }

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inputs"] = list(self.inputs)
        return d


def normalise_input(item: str) -> str:
    """URIs as given; local paths and globs made absolute."""
    return item if is_uri(item) else os.path.abspath(item)


def _is_media(name: str) -> bool:
    return Path(name).suffix.lower() in VIDEO_EXTENSIONS


def _local_video(path: Path, video_id: str) -> InputVideo:
    st = path.stat()
    return InputVideo(video_id, str(path), st.st_size, st.st_mtime)


def _from_uri(uri: str, problems: list[str]) -> list[InputVideo]:
    import pyarrow.fs as pafs

    try:
        fs, root = pafs.FileSystem.from_uri(uri)
        info = fs.get_file_info(root)
    except Exception as exc:  # bad scheme, no credentials, unreachable endpoint
        problems.append(f"{uri}: cannot open through pyarrow.fs ({exc})")
        return []
    scheme = uri.split("://", 1)[0]
    if info.type == pafs.FileType.File:
        return [InputVideo(uri, uri, int(info.size or 0), info.mtime_ns / 1e9 if info.mtime_ns else 0.0)]
    if info.type == pafs.FileType.NotFound:
        problems.append(f"{uri}: not found")
        return []
    found = []
    for fi in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
        if fi.type == pafs.FileType.File and _is_media(fi.path):
            rel = os.path.relpath(fi.path, root)
            found.append(InputVideo(rel, f"{scheme}://{fi.path}", int(fi.size or 0),
                                    fi.mtime_ns / 1e9 if fi.mtime_ns else 0.0))
    return found


def discover(inputs: Sequence[str]) -> list[InputVideo]:
    """The manifest: every input video once, sorted by video_id; all problems reported together."""
    problems: list[str] = []
    videos: list[InputVideo] = []
    for item in inputs:
        if is_uri(item):
            videos += _from_uri(item, problems)
            continue
        path = Path(item)
        if glob.has_magic(item):
            root = Path(item.split("*")[0].split("?")[0].split("[")[0])
            root = root if root.is_dir() else root.parent
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True))
            files = [p for p in matches if p.is_file()]
            if not files:
                problems.append(f"{item}: the glob matches no files")
            videos += [_local_video(p, p.relative_to(root).as_posix()) for p in files]
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and _is_media(p.name)
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not files:
                problems.append(f"{item}: the folder holds no video or audio files "
                                f"({', '.join(VIDEO_EXTENSIONS[:6])}, ...)")
            videos += [_local_video(p, p.relative_to(path).as_posix()) for p in files]
        elif path.is_file() and path.suffix.lower() in LIST_EXTENSIONS:
            for n, line in enumerate(path.read_text().splitlines(), 1):
                entry = line.strip()
                if not entry or entry.startswith("#"):
                    continue
                if is_uri(entry):
                    videos += _from_uri(entry, problems)
                else:
                    p = Path(entry) if Path(entry).is_absolute() else path.parent / entry
                    if p.exists():
                        videos.append(_local_video(p, entry) if p.is_file() else
                                      InputVideo(entry, str(p), 0, 0.0))
                    else:
                        # listed but missing: it becomes a failed row, not a silent omission
                        videos.append(InputVideo(entry, str(p), -1, 0.0))
        elif path.exists():
            videos.append(_local_video(path, path.name) if path.is_file() else InputVideo(path.name, str(path), 0, 0.0))
        else:
            problems.append(f"{item}: no such file, folder or glob")
    if problems:
        raise ConfigError(problems)
    seen: dict[str, InputVideo] = {}
    for v in videos:
        if v.video_id in seen and seen[v.video_id].path != v.path:
            raise ConfigError(f"two inputs share the video_id {v.video_id!r}: {seen[v.video_id].path} and "
                              f"{v.path}; pass them as separate jobs or from one common folder")
        seen[v.video_id] = v
    return sorted(seen.values(), key=lambda v: v.video_id)


def manifest_digest(videos: Sequence[InputVideo]) -> str:
    h = hashlib.sha256()
    for v in videos:
        h.update(json.dumps([v.video_id, v.path, v.size], separators=(",", ":")).encode())
    return h.hexdigest()[:16]

