"""The shapes generator is ground truth, so every claim it makes is recomputed here from meta.scene.

The checks below are written independently of the generator: they parse the text it wrote and
decide each answer, label and caption claim from the scene (and the scene from the pixels).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from mmbridge.data import load_dataset
from mmbridge.data.shapes import Style, generate_shapes

STYLE = Style()
NUMBERS = "zero one two three four five six seven eight nine ten"
WORD = {w: i for i, w in enumerate(NUMBERS.split())}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shapes")
    generate_shapes(out, images=400, seed=11, progress=False)
    return out


def _rows(folder: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines()]


def _all_rows(folder: Path) -> list[dict]:
    return [row for split in ("train", "val", "test") for row in _rows(folder, split)]


def _find(scene: dict, color: str) -> dict:
    [obj] = [o for o in scene["objects"] if o["color"] == color]
    return obj


def _dist(a: dict, b: dict) -> float:
    return math.dist((a["x"], a["y"]), (b["x"], b["y"]))


def test_splits_are_disjoint_and_sized(generated: Path) -> None:
    images = {split: {row["image"] for row in _rows(generated, split)} for split in ("train", "val", "test")}
    assert not images["train"] & images["val"] and not images["train"] & images["test"]
    assert not images["val"] & images["test"]
    assert (len(images["train"]), len(images["val"]), len(images["test"])) == (320, 40, 40)


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    def digest(folder: Path) -> str:
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        return hashlib.sha256(
            b"".join(p.relative_to(folder).as_posix().encode() + p.read_bytes() for p in files)
        ).hexdigest()

    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate_shapes(tmp_path / name, images=12, seed=seed, progress=False)
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")


def test_scenes_are_valid(generated: Path) -> None:
    scenes = {row["image"]: row["meta"]["scene"] for row in _all_rows(generated)}
    sizes, shapes, colors = Counter(), set(), set()
    for scene in scenes.values():
        objs = scene["objects"]
        sizes[len(objs)] += 1
        assert len({o["color"] for o in objs}) == len(objs)  # colours are unique, so "the red object" is one object
        for o in objs:
            shapes.add(o["shape"])
            colors.add(o["color"])
            assert o["size"] <= o["x"] < 64 - o["size"] and o["size"] <= o["y"] < 64 - o["size"]
        for a in objs:
            for b in objs:
                if a is not b:  # bounding circles (radius size * sqrt 2) never touch
                    assert _dist(a, b) > (a["size"] + b["size"]) * math.sqrt(2)
    assert set(sizes) == {2, 3, 4, 5, 6} and shapes == {"circle", "square", "triangle"} and len(colors) >= 6


def test_pixels_match_the_scene(generated: Path) -> None:
    checked = 0
    for row in _rows(generated, "val"):
        if row["task"] != "caption":
            continue
        pixels = np.asarray(PILImage.open(generated / row["image"]).convert("RGB"))
        scene = row["meta"]["scene"]
        painted = np.zeros(pixels.shape[:2], bool)
        for o in scene["objects"]:
            rgb = STYLE.colors[o["color"]]
            x, y, s = o["x"], o["y"], o["size"]
            assert tuple(pixels[y, x]) == rgb  # the centre has the object's colour
            corners = {
                "top": [tuple(pixels[y - s, x - s]), tuple(pixels[y - s, x + s])],
                "bottom": [tuple(pixels[y + s, x - s]), tuple(pixels[y + s, x + s])],
            }
            is_colored = {k: [c == rgb for c in v] for k, v in corners.items()}
            expected = {
                "square": {"top": [True, True], "bottom": [True, True]},
                "circle": {"top": [False, False], "bottom": [False, False]},
                "triangle": {"top": [False, False], "bottom": [True, True]},
            }[o["shape"]]
            assert is_colored == expected, (row["image"], o)
            painted |= (pixels == rgb).all(axis=2)
        # everything not painted by an object is background
        assert (pixels[~painted] == 255).all()
        checked += 1
    assert checked == 40


def _answer(question: str, scene: dict) -> str:
    objs = scene["objects"]
    if m := re.fullmatch(r"What shape is the (\w+) object\?", question):
        return _find(scene, m[1])["shape"]
    if m := re.fullmatch(r"What color is the (\w+)\?", question):
        [o] = [o for o in objs if o["shape"] == m[1]]
        return o["color"]
    if m := re.fullmatch(r"Is the (\w+) object on the left or on the right\?", question):
        x = _find(scene, m[1])["x"]
        assert abs(x - 32) >= 3, "ambiguous: too close to the middle"
        return "left" if x < 32 else "right"
    if m := re.fullmatch(r"Is the (\w+) object at the top or at the bottom\?", question):
        y = _find(scene, m[1])["y"]
        assert abs(y - 32) >= 3
        return "top" if y < 32 else "bottom"
    if question == "How many objects are there?":
        return str(len(objs))
    if m := re.fullmatch(r"How many (circle|square|triangle)s are there\?", question):
        return str(sum(o["shape"] == m[1] for o in objs))
    if m := re.fullmatch(r"Is there an? (\w+) (\w+)\?", question):
        return "yes" if any(o["color"] == m[1] and o["shape"] == m[2] for o in objs) else "no"
    if m := re.fullmatch(r"What (color|shape) is the object (closest to|furthest from) the (\w+) object\?", question):
        anchor = _find(scene, m[3])
        others = sorted((o for o in objs if o is not anchor), key=lambda o: _dist(anchor, o))
        pick = others[0] if m[2] == "closest to" else others[-1]
        if len(others) == 1:
            assert m[2] == "closest to", "with one other object, 'furthest' would name the closest one"
            return pick[m[1]]
        runner_up = others[1] if m[2] == "closest to" else others[-2]
        assert abs(_dist(anchor, pick) - _dist(anchor, runner_up)) >= 3, "ambiguous nearest/furthest"
        return pick[m[1]]
    raise AssertionError(f"unrecognized question {question!r}")


def test_every_vqa_answer_is_right(generated: Path) -> None:
    rows = [r for r in _all_rows(generated) if r["task"] == "vqa"]
    assert len(rows) > 1500
    for row in rows:
        assert row["answers"] == [_answer(row["question"], row["meta"]["scene"])], row["id"]
        assert row["answers"][0] in row["choices"]


def test_answers_are_balanced_within_each_family(generated: Path) -> None:
    by_family: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for row in _rows(generated, "train"):
        if row["task"] == "vqa":
            by_family[row["meta"]["type"]][row["answers"][0]] += 1
    assert set(by_family) == {"attribute", "position", "count", "exist", "relational"}
    for family, counts in by_family.items():
        share = max(counts.values()) / sum(counts.values())
        limit = 0.5 if set(counts) <= {"yes", "no"} else 2 / len(counts)
        assert share <= limit, (family, counts)


def _objects_named(text: str) -> list[tuple[str, str]]:
    return re.findall(r"\ban? (\w+) (circle|square|triangle)\b", text)


def test_every_caption_claim_is_true(generated: Path) -> None:
    for row in _all_rows(generated):
        if row["task"] != "caption":
            continue
        scene = row["meta"]["scene"]
        present = {(o["color"], o["shape"]) for o in scene["objects"]}
        refs = row["references"]
        assert len(refs) == 5 and len(set(refs)) == 5
        for ref in refs:
            named = _objects_named(ref)
            assert set(named) <= present, ref  # no hallucinated object
            m = re.match(r"(\w+) (?:colored )?shapes?", ref.replace("a white image with ", ""))
            if m and m[1] in WORD:
                assert WORD[m[1]] == len(scene["objects"]), ref
            if ref.startswith("from left to right"):
                xs = [_find(scene, color)["x"] for color, _ in named]
                assert xs == sorted(xs) and len(named) == len(scene["objects"])
            if " to the left of " in ref:
                (a, _), (b, _) = named
                assert _find(scene, a)["x"] + 3 <= _find(scene, b)["x"], ref
            if " above " in ref:
                (a, _), (b, _) = named
                assert _find(scene, a)["y"] + 3 <= _find(scene, b)["y"], ref
            if " next to " in ref:
                (a, _), (b, _) = named
                anchor = _find(scene, a)
                nearest = min((o for o in scene["objects"] if o is not anchor), key=lambda o: _dist(anchor, o))
                assert nearest["color"] == b, ref


def _truth(statement: str, scene: dict) -> bool:
    objs = scene["objects"]
    if m := re.fullmatch(r"the (\w+) object is an? (\w+)", statement):
        return _find(scene, m[1])["shape"] == m[2]
    if m := re.fullmatch(r"there are no (\w+)s", statement):
        return not any(o["shape"] == m[1] for o in objs)
    if m := re.fullmatch(r"there is exactly one (\w+)", statement):
        return sum(o["shape"] == m[1] for o in objs) == 1
    if m := re.fullmatch(r"there are exactly (\w+) (\w+)s", statement):
        return sum(o["shape"] == m[2] for o in objs) == WORD[m[1]]
    if m := re.fullmatch(r"the (\w+) object is (to the left of|above) the (\w+) object", statement):
        a, b = _find(scene, m[1]), _find(scene, m[3])
        axis = "x" if m[2] == "to the left of" else "y"
        assert abs(a[axis] - b[axis]) >= 3, "ambiguous spatial statement"
        return a[axis] < b[axis]
    raise AssertionError(f"unrecognized statement {statement!r}")


def test_every_verify_label_is_right_and_half_are_true(generated: Path) -> None:
    rows = [r for r in _all_rows(generated) if r["task"] == "verify"]
    for row in rows:
        assert row["label"] == _truth(row["statement"], row["meta"]["scene"]), row["id"]
    assert sum(r["label"] for r in rows) * 2 == len(rows)
    assert {r["meta"]["type"] for r in rows} == {"attribute", "count", "spatial"}


def test_a_differently_styled_dataset(tmp_path: Path) -> None:
    style = Style(
        colors={"cyan": (0, 200, 200), "magenta": (200, 0, 200), "gray": (120, 120, 120), "brown": (120, 70, 20)},
        shapes=("circle", "square"),
        image_size=96,
        background=(0, 0, 0),
        background_name="black",
        max_objects=4,
    )
    generate_shapes(tmp_path, images=20, seed=1, style=style, progress=False)
    rows = _all_rows(tmp_path)
    assert PILImage.open(tmp_path / rows[0]["image"]).size == (96, 96)
    assert {o["color"] for r in rows for o in r["meta"]["scene"]["objects"]} <= set(style.colors)
    assert any("black background" in ref for r in rows if r["task"] == "caption" for ref in r["references"])


def test_builtin_spec_generates_once_into_the_cache(tmp_path: Path) -> None:
    spec = "builtin:shapes?split=val&images=30&seed=2"
    first = load_dataset(spec, cache_dir=tmp_path)
    folder = Path(first.meta["folder"])
    stamp = (folder / "val.jsonl").stat().st_mtime_ns
    again = load_dataset(spec, cache_dir=tmp_path)
    assert [s.id for s in first] == [s.id for s in again] and len(first) > 0
    assert (folder / "val.jsonl").stat().st_mtime_ns == stamp
    assert first.samples[0].image.is_file() and first.source == spec
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary folders left behind
