"""Render the model cards of committed run files (no weights needed) into model_cards/:
`python scripts/render_cards.py reports/camvid_cpu_best reports/leak_12epochs/group ...`.

The architecture is rebuilt from the recipe with random weights, only for its class name and parameter count.
"""

import argparse
import dataclasses
from pathlib import Path

from hf_seg.cli import run_cli
from hf_seg.data import declared_classes
from hf_seg.hub.card import COPIED, read_run, render_card
from hf_seg.models import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders (recipe.json, split.json, history.jsonl, val_metrics.json)")
    parser.add_argument("--out", type=Path, default=Path("model_cards"), help="folder for <run name>.md")
    parser.add_argument("--namespace", default="hf-seg", help="Hub namespace shown in the usage snippets")
    args = parser.parse_args()

    def go() -> None:
        for run_dir in map(Path, args.runs):
            record = read_run(run_dir, weights=False)
            model = build_model(dataclasses.replace(record.recipe.model, pretrained=None),
                                declared_classes(record.recipe.data))
            name = "-".join(run_dir.parts[-2:]) if run_dir.parent.name != "reports" else run_dir.name
            files = [f for f in COPIED if (run_dir / f).is_file()]
            card = render_card(record, f"{args.namespace}/{name.replace('_', '-')}", model, files)
            card.save(args.out / f"{name}.md")
            print(f"{args.out / f'{name}.md'}: {record.recipe.name}, val mIoU {100 * record.val['mean_iou']:.1f}")

    run_cli(go)


if __name__ == "__main__":
    main()
