"""COCO instance annotations (polygons, RLE) as label maps: each image's segments painted with their category's
class (background 0, categories 1.. in id order), crowd regions as the ignore index; read with pycocotools."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CocoLabelMaps:
    """The label maps a COCO file gives the images of one folder, by image path."""

    file: Path
    images: dict[str, dict[str, Any]]
    """Image record (id, height, width, file_name) by the image's path (images folder / file_name)."""
    annotations: dict[int, list[dict[str, Any]]]
    """Annotations by image id."""
    classes: dict[int, int]
    """Class index (1..) by category id."""
    class_names: list[str]
    """background, then the categories' names in id order."""
    ignore_index: int

    def label_map(self, image: Path) -> np.ndarray:
        """(H, W) class indices of `image`: larger segments first so smaller ones stay visible on top; crowd
        segments (iscrowd 1) are the ignore index."""
        from pycocotools import mask as coco_mask

        record = self.images.get(str(image))
        if record is None:
            raise ValueError(f"COCO file '{self.file}' has no image entry for '{image}'. Add it or drop the image.")
        height, width = int(record["height"]), int(record["width"])
        labels = np.zeros((height, width), dtype=np.int64)
        for annotation in sorted(self.annotations.get(int(record["id"]), []), key=lambda a: -float(a.get("area", 0))):
            segmentation = annotation["segmentation"]
            if isinstance(segmentation, list):  # polygons: one object may have several parts
                rle = coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
            elif isinstance(segmentation.get("counts"), list):  # uncompressed RLE
                rle = coco_mask.frPyObjects(segmentation, height, width)
            else:
                rle = segmentation
            inside = coco_mask.decode(rle).astype(bool)
            crowd = bool(annotation.get("iscrowd", 0))
            labels[inside] = self.ignore_index if crowd else self.classes[int(annotation["category_id"])]
        return labels


def load_coco(file: Path, image_root: Path, ignore_index: int) -> CocoLabelMaps:
    """Read a COCO instances file; an annotation naming an unknown image or category, or an image file that does
    not exist, stops here naming it."""
    if not file.is_file():
        raise FileNotFoundError(f"data.coco_file: '{file}' does not exist. Point --data.coco_file at the COCO JSON.")
    try:
        raw = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"COCO file '{file}' is not valid JSON: {err}.") from err
    missing_keys = [key for key in ("images", "annotations", "categories") if key not in raw]
    if missing_keys:
        raise ValueError(f"COCO file '{file}' has no {', '.join(missing_keys)}; it is not a COCO instances file.")
    images = {str(image_root / record["file_name"]): record for record in raw["images"]}
    absent = sorted(path for path in images if not Path(path).is_file())
    if absent:
        raise FileNotFoundError(
            f"COCO file '{file}' names {len(absent)} image(s) that do not exist under '{image_root}' (e.g. "
            f"{', '.join(Path(p).relative_to(image_root).as_posix() for p in absent[:3])}). Restore them or remove "
            "their entries."
        )
    categories = sorted(raw["categories"], key=lambda c: int(c["id"]))
    classes = {int(c["id"]): k + 1 for k, c in enumerate(categories)}
    known = {int(record["id"]) for record in raw["images"]}
    annotations: dict[int, list[dict[str, Any]]] = {}
    for annotation in raw["annotations"]:
        image_id, category = int(annotation["image_id"]), int(annotation["category_id"])
        if image_id not in known:
            raise ValueError(
                f"COCO file '{file}': annotation {annotation.get('id')} names image id {image_id}, which its "
                "images list lacks. Add the image or remove the annotation."
            )
        if category not in classes:
            raise ValueError(
                f"COCO file '{file}': annotation {annotation.get('id')} names category {category}, which its "
                f"categories list lacks (ids {sorted(classes)})."
            )
        annotations.setdefault(image_id, []).append(annotation)
    names = ["background", *(str(c["name"]) for c in categories)]
    return CocoLabelMaps(file, images, annotations, classes, names, ignore_index)
