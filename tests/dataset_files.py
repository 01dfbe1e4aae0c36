"""Writing small dataset folders for tests, in the format of docs/interfaces.md."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def write_dataset(
    folder: Path, dataset: str, lang: str, splits: dict[str, list[dict]], labels=None
) -> Path:
    """A dataset folder (jsonl splits + manifest.json) as ``langarith.data`` writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    info = {}
    for split, rows in splits.items():
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        (folder / f"{split}.jsonl").write_text(text, encoding="utf-8")
        info[split] = {"rows": len(rows), "sha256": hashlib.sha256(text.encode()).hexdigest()}
    manifest = {
        "dataset": dataset,
        "language": lang,
        "source": "test",
        "revision": None,
        "created_utc": "2024-01-01T00:00:00+00:00",
        "options": {},
        "splits": info,
        # as docs/interfaces.md fixes it: sha256 of "<split> <sha256>\n" sorted by split
        "checksum": hashlib.sha256(
            "".join(f"{s} {info[s]['sha256']}\n" for s in sorted(info)).encode()
        ).hexdigest(),
    }
    if labels is not None:
        manifest["labels"] = labels
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder
