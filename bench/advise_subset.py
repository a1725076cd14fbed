"""Run the model-size advisor on a fixed contoso-hr subset: the first N answerable, the first M unanswerable.

Usage (issue 15; one process a model, so they can run side by side, each resumable):
    ENCLAVE_GENERATION__EMBEDDED__THREADS=1 HF_HUB_OFFLINE=1 python bench/advise_subset.py \
        N M OUT_DIR MODEL_FILE --data-dir DATA_DIR
MODEL_FILE is a GGUF file (copied into DATA_DIR/models/) or `packaged` for the packaged Gemma 3 270M.
Then bench/advise_table.py merges the runs into one table, JSON and PNG.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the project root, not bench/, so `ingest` is the project's package

from assistant.advisor import advise  # noqa: E402
from assistant.models.catalogue import add_model, list_models  # noqa: E402
from assistant.settings import load_settings  # noqa: E402

DATASET = ROOT / ".." / "shared" / "datasets" / "contoso-hr"


def subset(answerable: int, unanswerable: int, where: Path) -> Path:
    """A QA folder with contoso-hr's docs linked and the chosen questions."""
    folder = where / f"contoso-hr-{answerable}a{unanswerable}u"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "docs").exists():
        (folder / "docs").symlink_to(DATASET.resolve() / "docs")
    items = [json.loads(line) for line in (DATASET / "qa.jsonl").read_text().splitlines() if line.strip()]
    chosen = [i for i in items if i["answerable"]][:answerable]
    chosen += [i for i in items if not i["answerable"]][:unanswerable]
    (folder / "qa.jsonl").write_text("".join(json.dumps(i) + "\n" for i in chosen))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("answerable", type=int)
    parser.add_argument("unanswerable", type=int)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("model", help="a GGUF file, or 'packaged'")
    parser.add_argument("--data-dir", type=Path, required=True, help="where the models are catalogued")
    args = parser.parse_args()
    settings = load_settings(data_dir=args.data_dir)
    if args.model == "packaged":
        catalogue = list_models(settings, timeout_s=0.5)
        model = next(m for m in catalogue.models if m.source == "packaged" and "gemma" in m.name)
    else:
        model = add_model(Path(args.model), args.data_dir)
    started = time.monotonic()

    def progress(name: str, done: int, total: int) -> None:
        print(f"{time.monotonic() - started:7.0f}s {name} {done}/{total}", flush=True)

    folder = subset(args.answerable, args.unanswerable, args.out_dir.parent)
    advice = advise(folder, [model], None, args.out_dir, progress, settings=settings)
    print(json.dumps(advice.to_json(), indent=1))


if __name__ == "__main__":
    main()
