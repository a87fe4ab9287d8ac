"""AVE and DCASE annotation files: parsing, errors, matching to videos, targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.annotations import clip_label, match_videos, read_annotations, segment_targets
from pipeline.errors import AnnotationError


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_ave_format(tmp_path: Path) -> None:
    p = write(tmp_path, "Annotations.txt",
              "Category&VideoID&Quality&StartTime&EndTime\nChurch bell&RUhOCu3LNXM&good&0&10\n"
              "Male speech, man speaking&abc&bad&3&7\n")
    ann = read_annotations(p)
    assert ann.format == "ave" and ann.labels == ["Church bell", "Male speech, man speaking"]
    (a,) = ann.videos["abc"]
    assert (a.label, a.onset, a.offset) == ("Male speech, man speaking", 3.0, 7.0)


def test_dcase_format_with_and_without_header(tmp_path: Path) -> None:
    for text in ("filename\tonset\toffset\tevent_label\na.wav\t0.5\t1.25\tdog\na.wav\t2\t3\tbell\n",
                 "a.wav\t0.5\t1.25\tdog\na.wav\t2\t3\tbell\n"):
        ann = read_annotations(write(tmp_path, "e.tsv", text))
        assert ann.format == "dcase" and ann.labels == ["bell", "dog"]
        assert [(x.label, x.onset, x.offset) for x in ann.videos["a.wav"]] == [("dog", 0.5, 1.25), ("bell", 2, 3)]


def test_malformed_lines_are_all_reported(tmp_path: Path) -> None:
    p = write(tmp_path, "bad.txt", "dog&v1&good&0&5\ndog&v2&good&x&5\ncat&v3&good&6&2\nbird&v4&good\n")
    with pytest.raises(AnnotationError) as err:
        read_annotations(p)
    msg = str(err.value)
    assert "3 malformed lines" in msg and "line 2" in msg and "line 3" in msg and "line 4" in msg
    with pytest.raises(AnnotationError, match="cannot tell the format"):
        read_annotations(write(tmp_path, "x.csv", "a,b,c\n"))
    with pytest.raises(AnnotationError, match="empty"):
        read_annotations(write(tmp_path, "empty.txt", "\n"))
    with pytest.raises(AnnotationError, match="not found"):
        read_annotations(tmp_path / "nope.txt")


def test_matching_videos_and_unknowns(tmp_path: Path) -> None:
    (tmp_path / "vids").mkdir()
    (tmp_path / "vids" / "v1.mp4").write_bytes(b"x")
    (tmp_path / "vids" / "a.wav").write_bytes(b"x")
    ave = read_annotations(write(tmp_path, "a.txt", "dog&v1&good&0&5\ndog&v9&good&0&5\ndog&v8&good&0&5\n"))
    with pytest.raises(AnnotationError, match="2 annotated videos are not in .*v9, v8"):
        match_videos(ave, tmp_path / "vids")
    dcase = read_annotations(write(tmp_path, "d.tsv", "a.wav\t0\t1\tdog\n"))
    assert match_videos(dcase, tmp_path / "vids") == {"a.wav": tmp_path / "vids" / "a.wav"}


def test_unknown_labels_are_refused(tmp_path: Path) -> None:
    ann = read_annotations(write(tmp_path, "a.txt", "dog&v1&good&0&5\nunicorn&v2&good&0&5\n"))
    with pytest.raises(AnnotationError, match="unicorn"):
        ann.check_labels(["dog", "bell"])


def test_segment_targets_and_clip_label(tmp_path: Path) -> None:
    ann = read_annotations(write(tmp_path, "a.txt", "dog&v&good&1&3\nbell&v&good&3.6&5\n")).videos["v"]
    starts = np.arange(6.0)
    targets = segment_targets(ann, starts, starts + 1, ["dog", "bell"])
    # segment 3 has 0.4 s of bell: under half, background (2)
    assert targets.tolist() == [2, 0, 0, 2, 1, 2]
    assert clip_label(ann, ["dog", "bell"]) == 0
