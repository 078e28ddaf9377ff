"""Readers for real data as distributed: COCO captions annotations and the VQA v2 questions + annotations pair."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..errors import DatasetError
from ..types import Task
from .jsonl import check_images
from .sample import Dataset, Sample

__all__ = ["read_coco_captions", "read_vqa_v2"]


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"dataset file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a JSON object at the top")
    return data


def _field(path: Path, where: str, item: Any, name: str) -> Any:
    if not isinstance(item, dict) or name not in item:
        raise DatasetError(f"{path}: {where}: field {name!r} is missing")
    return item[name]


def _images_dir(path: Path, explicit: str | Path | None, subtype: str | None, first_file: str) -> Path:
    """The folder that holds the images: ``explicit``, or the usual COCO layouts around ``path``."""
    if explicit is not None:
        return Path(explicit)
    tried = [path.parent, path.parent / "images"]
    if subtype:
        tried += [path.parent.parent / subtype, path.parent.parent / "images" / subtype, path.parent / subtype]
    for folder in tried:
        if (folder / first_file).is_file():
            return folder
    shown = ", ".join(str(t) for t in tried)
    raise DatasetError(f"{path}: cannot find image {first_file} in {shown}; pass the folder as ?images=DIR")


def read_coco_captions(path: str | Path, images_dir: str | Path | None = None) -> Dataset:
    """COCO ``captions_*.json``: one caption sample per image with all its captions as references."""
    path = Path(path)
    data = _load(path)
    files = {}
    for n, image in enumerate(_field(path, "top level", data, "images")):
        files[_field(path, f"images[{n}]", image, "id")] = _field(path, f"images[{n}]", image, "file_name")
    refs: defaultdict[Any, list[str]] = defaultdict(list)
    for n, ann in enumerate(_field(path, "top level", data, "annotations")):
        image_id = _field(path, f"annotations[{n}]", ann, "image_id")
        if image_id not in files:
            raise DatasetError(f"{path}: annotations[{n}]: image_id {image_id} is not in 'images'")
        refs[image_id].append(str(_field(path, f"annotations[{n}]", ann, "caption")).strip())
    if not refs:
        raise DatasetError(f"{path}: no caption annotations")
    folder = _images_dir(path, images_dir, None, files[next(iter(refs))])
    samples = [
        Sample(
            id=f"coco-{image_id}",
            image=folder / files[image_id],
            task=Task.CAPTION,
            references=captions,
            meta={"coco_id": image_id},
        )
        for image_id, captions in refs.items()
    ]
    check_images(samples, path)
    return Dataset(samples, str(path))


def _partner(questions: Path) -> Path:
    """v2_OpenEnded_mscoco_val2014_questions.json -> v2_mscoco_val2014_annotations.json, as distributed."""
    name = questions.name.replace("OpenEnded_", "").replace("MultipleChoice_", "").replace("questions", "annotations")
    return questions.with_name(name)


def read_vqa_v2(
    questions_path: str | Path, annotations_path: str | Path | None = None, images_dir: str | Path | None = None
) -> Dataset:
    """VQA v2: questions joined with their ten human answers; ``meta.type`` is the answer type."""
    questions_path = Path(questions_path)
    annotations_path = Path(annotations_path) if annotations_path else _partner(questions_path)
    if not annotations_path.is_file():
        raise DatasetError(
            f"{questions_path}: its annotations file {annotations_path} does not exist; pass ?annotations=FILE"
        )
    questions = _load(questions_path)
    annotations = _load(annotations_path)
    by_question = {}
    for n, ann in enumerate(_field(annotations_path, "top level", annotations, "annotations")):
        by_question[_field(annotations_path, f"annotations[{n}]", ann, "question_id")] = ann
    subtype = questions.get("data_subtype")
    items = _field(questions_path, "top level", questions, "questions")
    if not items:
        raise DatasetError(f"{questions_path}: no questions")

    def file_of(image_id: int) -> str:
        return f"COCO_{subtype}_{image_id:012d}.jpg" if subtype else f"{image_id:012d}.jpg"

    first = _field(questions_path, "questions[0]", items[0], "image_id")
    folder = _images_dir(questions_path, images_dir, subtype, file_of(first))
    samples = []
    for n, q in enumerate(items):
        where = f"questions[{n}]"
        qid = _field(questions_path, where, q, "question_id")
        ann = by_question.get(qid)
        if ann is None:
            raise DatasetError(f"{annotations_path}: no annotation for question_id {qid} ({questions_path}, {where})")
        answers = [str(_field(annotations_path, f"question {qid}", a, "answer")) for a in ann.get("answers", [])]
        if not answers:
            raise DatasetError(f"{annotations_path}: question {qid}: field 'answers' is empty")
        samples.append(
            Sample(
                id=str(qid),
                image=folder / file_of(_field(questions_path, where, q, "image_id")),
                task=Task.VQA,
                question=_field(questions_path, where, q, "question"),
                answers=answers,
                meta={"type": ann.get("answer_type", "unknown"), "question_type": ann.get("question_type")},
            )
        )
    check_images(samples, questions_path)
    return Dataset(samples, str(questions_path))
