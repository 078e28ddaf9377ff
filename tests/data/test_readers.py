"""Dataset readers: the JSON Lines format, COCO captions, VQA v2, and errors naming file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image as PILImage

from mmbridge import DatasetError, Task
from mmbridge.data import load_dataset
from mmbridge.data.jsonl import read_jsonl, write_jsonl


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.new("RGB", (8, 8), (200, 10, 10)).save(path)
    return path


GOOD = [
    {
        "id": "q1",
        "image": "images/a.png",
        "task": "vqa",
        "question": "What color?",
        "answers": ["red"],
        "choices": None,
        "meta": {"type": "attribute"},
    },
    {"id": "c1", "image": "images/a.png", "task": "caption", "references": ["a red square", "red"]},
    {"id": "v1", "image": "images/a.png", "task": "verify", "statement": "it is red", "label": True},
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    _image(tmp_path / "images" / "a.png")
    return tmp_path


def _write(folder: Path, rows: list, name: str = "data.jsonl") -> Path:
    path = folder / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_reads_the_documented_format(folder: Path) -> None:
    dataset = load_dataset(_write(folder, GOOD))
    assert [s.task for s in dataset] == [Task.VQA, Task.CAPTION, Task.VERIFY]
    assert dataset.samples[0].image == folder / "images" / "a.png"  # relative to the file's folder
    request = dataset.samples[0].to_request()
    assert request.question == "What color?" and request.meta == {"sample_id": "q1"}
    assert dataset.filter({"vqa", "verify"}, limit=1).tasks() == {"vqa": 1, "verify": 1}


def test_write_then_read_round_trips(folder: Path) -> None:
    dataset = read_jsonl(_write(folder, GOOD))
    out = folder / "copy" / "again.jsonl"
    write_jsonl(dataset.samples, out)
    assert read_jsonl(out).samples == dataset.samples
    assert json.loads(out.read_text().splitlines()[0])["image"] == "../images/a.png"


BAD = {
    "not json": ('{"id": "q1", ', 1, "not valid JSON"),
    "not an object": ("[1, 2]", 1, "must be a JSON object"),
    "missing question": ({**GOOD[0], "question": None}, 1, "needs 'question'"),
    "missing answers": ({k: v for k, v in GOOD[0].items() if k != "answers"}, 1, "needs 'answers'"),
    "wrong label type": ({**GOOD[2], "label": "maybe"}, 1, "field 'label'"),
    "unknown task": ({**GOOD[0], "task": "dance"}, 1, "field 'task'"),
    "unknown field": ({**GOOD[0], "answer": "red"}, 1, "unknown field 'answer'"),
    "answer not in choices": ({**GOOD[0], "choices": ["blue", "green"]}, 1, "among 'choices'"),
    "missing image": ({**GOOD[1], "id": "c2", "image": "images/gone.png"}, 1, "gone.png does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_errors_name_file_line_and_field(folder: Path, case: str) -> None:
    row, _, expected = BAD[case]
    path = _write(folder, [GOOD[1], "", row])  # the bad row is on line 3, after a blank line
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert f"{path}:3: " in str(info.value) and expected in str(info.value)
    assert "\n" not in str(info.value)


def test_duplicate_ids_and_missing_files(folder: Path) -> None:
    with pytest.raises(DatasetError, match=r":2: field 'id': 'q1' was already used on line 1"):
        load_dataset(_write(folder, [GOOD[0], GOOD[0]]))
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(folder / "none.jsonl")
    with pytest.raises(DatasetError, match="is a folder"):
        load_dataset(folder)
    with pytest.raises(DatasetError, match="unknown option"):
        load_dataset("builtin:shapes?colour=red", cache_dir=folder)
    with pytest.raises(DatasetError, match="unknown built-in dataset"):
        load_dataset("builtin:clevr", cache_dir=folder)


def _coco(root: Path) -> Path:
    for image_id in (1, 2):
        _image(root / "val2017" / f"{image_id:012d}.jpg")
    data = {
        "images": [{"id": 1, "file_name": "000000000001.jpg"}, {"id": 2, "file_name": "000000000002.jpg"}],
        "annotations": [
            {"id": 10, "image_id": 1, "caption": "A red square. "},
            {"id": 11, "image_id": 1, "caption": "a square that is red"},
            {"id": 12, "image_id": 2, "caption": "another picture"},
        ],
    }
    path = root / "annotations" / "captions_val2017.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    return path


def test_coco_captions(tmp_path: Path) -> None:
    path = _coco(tmp_path)
    dataset = load_dataset(f"{path}?images={tmp_path / 'val2017'}")
    assert [s.references for s in dataset] == [["A red square.", "a square that is red"], ["another picture"]]
    assert dataset.samples[0].image == tmp_path / "val2017" / "000000000001.jpg"
    with pytest.raises(DatasetError, match=r"cannot find image 000000000001.jpg .* pass the folder as \?images=DIR"):
        load_dataset(path)
    broken = json.loads(path.read_text())
    del broken["annotations"][1]["caption"]
    path.write_text(json.dumps(broken))
    with pytest.raises(DatasetError, match=r"annotations\[1\]: field 'caption' is missing"):
        load_dataset(f"{path}?images={tmp_path / 'val2017'}")


def test_vqa_v2_pair_in_the_distributed_layout(tmp_path: Path) -> None:
    _image(tmp_path / "val2014" / "COCO_val2014_000000000042.jpg")
    questions = {
        "data_subtype": "val2014",
        "questions": [
            {"image_id": 42, "question": "What color is it?", "question_id": 420},
            {"image_id": 42, "question": "Is it square?", "question_id": 421},
        ],
    }
    answers = [
        {"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(["red"] * 9 + ["pink"])
    ]
    annotations = {
        "annotations": [
            {
                "question_id": 420,
                "image_id": 42,
                "answers": answers,
                "answer_type": "other",
                "question_type": "what color",
            },
            {
                "question_id": 421,
                "image_id": 42,
                "answers": [{"answer": "yes", "answer_id": 1}] * 10,
                "answer_type": "yes/no",
            },
        ]
    }
    (tmp_path / "annotations").mkdir()
    qpath = tmp_path / "annotations" / "v2_OpenEnded_mscoco_val2014_questions.json"
    qpath.write_text(json.dumps(questions))
    (tmp_path / "annotations" / "v2_mscoco_val2014_annotations.json").write_text(json.dumps(annotations))
    dataset = load_dataset(qpath)
    first = dataset.samples[0]
    assert first.id == "420" and len(first.answers) == 10 and first.answers[-1] == "pink"
    assert first.meta["type"] == "other" and dataset.samples[1].meta["type"] == "yes/no"
    assert first.image == tmp_path / "val2014" / "COCO_val2014_000000000042.jpg"
    annotations["annotations"].pop()
    (tmp_path / "annotations" / "v2_mscoco_val2014_annotations.json").write_text(json.dumps(annotations))
    with pytest.raises(DatasetError, match="no annotation for question_id 421"):
        load_dataset(qpath)
