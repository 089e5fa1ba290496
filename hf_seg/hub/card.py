"""The model card of a run: YAML metadata (model-index) and markdown, rendered from the run folder's files alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import jinja2
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from hf_seg.errors import HfSegError
from hf_seg.formatting import pct
from hf_seg.hub.datasets import GENERAL_LIMITATIONS, DatasetCard, dataset_card, is_hub_id
from hf_seg.metrics import format_metrics_table
from hf_seg.recipe import Recipe
from hf_seg.runs import RunFolder, RunFolderError

TEMPLATE = Path(__file__).resolve().parent / "templates" / "model_card.md.j2"
"""The model-card template, shipped inside the package; model_cards/README.md says how it is filled."""

REQUIRED = ("recipe.json", "split.json", "history.jsonl", "val_metrics.json", "best")
COPIED = {
    "recipe.json": "the resolved training recipe (every setting of the run)",
    "split.json": "the image ids of each split, with the split settings",
    "history.jsonl": "one JSON line per epoch: losses, learning rate, validation metrics",
    "val_metrics.json": "validation metrics of these weights, with the confusion matrix",
    "test_metrics.json": "test metrics of these weights, with the confusion matrix and when they were computed",
    "efficiency.json": "parameters, MACs/FLOPs and forward-pass speed",
    "curves.png": "training loss and validation mIoU per epoch",
}
"""Run-folder files copied into the upload folder (when present), with what they hold, for the card's file list."""
SUMMARY_METRICS = (("mean_iou", "Mean IoU (%)"), ("mean_dice", "Mean Dice (%)"),
                   ("overall_accuracy", "Pixel accuracy (%)"), ("mean_accuracy", "Mean class accuracy (%)"))


class HubError(HfSegError):
    """A run cannot be published or the push failed; the message says why and what to do."""


@dataclass
class RunRecord:
    """What a card is made of, read once from a finished run folder."""

    recipe: Recipe
    dataset: DatasetCard
    split: dict
    history: list[dict]
    val: dict
    test: Optional[dict]  # None until the test split is evaluated
    efficiency: Optional[dict]  # None until benchmarked


def read_run(run_dir: Path, weights: bool = True) -> RunRecord:
    """Recipe, split, history and metrics of a finished run folder (`weights=False`: best/ may be absent, as in
    committed run files)."""
    try:
        run = RunFolder(run_dir).require(*(REQUIRED if weights else REQUIRED[:-1]), fix="train it to the end first")
    except RunFolderError as e:
        raise HubError(str(e)) from e
    recipe = run.recipe()
    return RunRecord(recipe=recipe, dataset=dataset_card(recipe), split=run.read(run.SPLIT), history=run.history(),
                     val=run.read(run.VAL_METRICS), test=run.read_optional(run.metrics_file("test").name),
                     efficiency=run.read_optional(run.EFFICIENCY))


def _millions(n: int) -> str:
    return f"{n / 1e6:.1f} M"


def model_summary(recipe: Recipe, model) -> dict:
    """Architecture, encoder, initialisation and size of the published model."""
    cfg = recipe.model
    segformer = cfg.arch.lower() == "segformer"
    if cfg.pretrained is None:
        init = "from scratch"
    elif Path(cfg.pretrained).expanduser().exists():  # a local checkpoint: its path is never published
        init = "by fine-tuning a local checkpoint"
    else:
        init = f"from pretrained {'weights' if segformer else 'encoder weights'} `{cfg.pretrained}`"
    return {
        "family": "segformer" if segformer else "smp",
        "plain_smp": not segformer and not str(cfg.encoder).startswith("tu-"),  # smp.from_pretrained loads it
        "arch": cfg.arch,
        "architecture": "SegFormer (transformers)" if segformer
        else f"{type(model.smp_model).__name__} (segmentation_models_pytorch)",
        "encoder": f"MiT-{cfg.encoder}" if segformer else f"{cfg.encoder}",
        "initialisation": init,
        "params": _millions(sum(p.numel() for p in model.parameters())),
        "image_size": list(recipe.data.image_size),
    }


def split_summary(split: dict) -> dict:
    """How the images were split, and each split's size and groups, from split.json (hf_seg.data.save_split)."""
    mode = split.get("mode")
    if mode == "group":
        block, buffer = split.get("block_seconds"), split.get("buffer_seconds") or 0.0
        unit = (f"contiguous time blocks of about {block:g} s of one video" if block else "whole sequences")
        text = (f"Split by group so that correlated images never straddle two splits: the groups are {unit}, and each "
                f"group goes whole to one split (target fractions {' / '.join(f'{100 * f:g}' for f in split['fractions'])} %, "
                f"seed {split.get('seed')}).")
        if block and buffer:
            text += (f" Frames within {buffer / 2:g} s of an edge between blocks that went to different splits are "
                     f"dropped ({len(split.get('dropped', []))} images), so no two kept frames of different splits "
                     f"are closer than {buffer:g} s.")
    elif mode == "official":
        text = "The dataset's official train / validation / test split."
    else:
        text = "A split read from a split file."
    rows = []
    for name, groups in split["groups"].items():
        sequences = sorted({g.split("@")[0] for g in groups})
        rows.append({"name": name, "images": split["sizes"][name],
                     "groups": f"{len(groups)} groups from {', '.join(sequences)}" if len(sequences) < len(groups)
                     else ", ".join(groups)})
    return {"description": text, "rows": rows}


def augmentation_text(augment: list) -> str:
    """The recipe's augmentation list as readable text."""
    if not augment:
        return "none"
    parts = []
    for item in augment:
        if isinstance(item, dict):
            params = ", ".join(f"{k}={v}" for k, v in item.items() if k != "name")
            parts.append(f"`{item['name']}`" + (f" ({params})" if params else ""))
        else:
            parts.append(f"`{item}`")
    return ", ".join(parts)


def hyperparameters(recipe: Recipe) -> list[tuple[str, str]]:
    """The settings that shaped the weights, as (name, value) rows."""
    loss, opt, tr = recipe.loss, recipe.optim, recipe.train
    loss_text = loss.name
    details = {"ce": {"label_smoothing": loss.label_smoothing}, "focal": {"gamma": loss.gamma},
               "dice": {"smooth": loss.dice_smooth},
               "ce_dice": {"label_smoothing": loss.label_smoothing, "smooth": loss.dice_smooth, **loss.weights}}
    params = details.get(loss.name, {})
    if params:
        loss_text += " (" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")"
    schedule = opt.schedule + (f" (power {opt.poly_power})" if opt.schedule == "poly" else "")
    rows = [
        ("input size (H×W)", f"{recipe.data.image_size[0]}×{recipe.data.image_size[1]}"),
        ("loss", loss_text),
        ("class weights", recipe.data.class_weights or "none"),
        ("optimizer", f"AdamW, lr {opt.lr:g}, weight decay {opt.weight_decay:g}, betas {tuple(opt.betas)}"),
        ("schedule", f"{schedule}, {opt.warmup_steps} warm-up steps"),
        ("gradient clipping", f"max norm {opt.max_grad_norm:g}" if opt.max_grad_norm else "none"),
        ("batch size", f"{tr.batch_size} × {tr.grad_accum} accumulation step(s)"),
        ("epochs (max)", str(tr.epochs) + (f", at most {tr.max_steps} steps" if tr.max_steps else "")),
        ("early stopping", f"after {tr.early_stopping_patience} evaluations without a better val mIoU"
         if tr.early_stopping_patience else "none"),
        ("mixed precision", tr.mixed_precision),
        ("seed", str(tr.seed)),
    ]
    for key in ("max_train_samples", "max_eval_samples"):
        if getattr(recipe.data, key):
            rows.append((f"data.{key}", f"{getattr(recipe.data, key)} (an evenly spaced slice; the split sizes above are after it)"))
    return rows


def metrics_block(metrics: dict) -> dict:
    """Headline numbers in percent plus the per-class table."""
    block = {key: pct(metrics[key]) for key, _ in SUMMARY_METRICS}
    block["table"] = format_metrics_table(metrics)
    evaluation = metrics.get("evaluation") or {}
    block["images_note"] = f"On {evaluation['images']} images: " if "images" in evaluation else ""
    block["when"] = evaluation.get("time", "at an unrecorded time")
    block["forced"] = bool(evaluation.get("forced"))
    return block


def efficiency_block(eff: dict) -> dict:
    """Parameters, MACs/FLOPs and speed rows from efficiency.json (`hf-seg benchmark`'s output)."""
    try:
        rows = [{"precision": precision, "batch_size": t["batch_size"], "images_per_s": f"{t['images_per_s']:.1f}",
                 "ms_per_image": f"{t['latency_ms_per_image']:.1f}"}
                for precision, timings in eff["speed"].items() for t in timings]
        return {"params": _millions(eff["params"]["total"]), "macs": f"{eff['macs_per_image'] / 1e9:.2f}",
                "flops": f"{eff['flops_per_image'] / 1e9:.2f}", "method": eff["flops_method"],
                "image_size": eff["image_size"], "device": eff["device_name"], "threads": eff.get("threads"),
                "rows": rows}
    except (KeyError, TypeError) as e:
        raise HubError(f"efficiency.json lacks key {e} of a benchmark result; rewrite it with `hf-seg benchmark` "
                       "or remove it from the run folder") from e


def eval_results(dataset: DatasetCard, split_mode: str, results: dict[str, dict]) -> list[EvalResult]:
    """model-index entries (image-segmentation, metrics in percent) for each evaluated split."""
    entries = []
    for split_name, metrics in results.items():
        for key, label in SUMMARY_METRICS:
            if metrics.get(key) is None:
                continue
            entries.append(EvalResult(
                task_type="image-segmentation", task_name="Semantic segmentation",
                dataset_type=dataset.hub_id or dataset.name, dataset_name=f"{dataset.name} ({split_mode} split)",
                dataset_split=split_name, metric_type=key, metric_name=label,
                metric_value=round(100 * metrics[key], 2)))
    return entries


def card_data(run: RunRecord, repo_id: str, license: Optional[str]) -> ModelCardData:
    """The card's YAML metadata: library, task, tags, dataset, licence and model-index results."""
    model, dataset = run.recipe.model, run.dataset
    segformer = model.arch.lower() == "segformer"
    tags = ["hf_seg", "semantic-segmentation", "image-segmentation", model.arch.lower(),
            *([model.encoder] if model.encoder else []), *([] if segformer else ["segmentation-models-pytorch"])]
    results = {"validation": run.val, **({"test": run.test} if run.test else {})}
    chosen = license or dataset.license
    plain_smp = not segformer and not str(model.encoder).startswith("tu-")
    return ModelCardData(
        library_name="transformers" if segformer else "segmentation-models-pytorch" if plain_smp else None,
        pipeline_tag="image-segmentation",
        license=chosen,
        license_name=(dataset.license_name or "custom") if chosen == "other" else None,
        datasets=[dataset.hub_id] if dataset.hub_id else None,
        base_model=model.pretrained if model.pretrained and is_hub_id(model.pretrained) else None,
        metrics=["mean_iou"],
        tags=tags,
        model_name=repo_id.split("/")[1],
        eval_results=eval_results(dataset, run.recipe.data.split.mode, results),
    )


def card_context(run: RunRecord, repo_id: str, model, files: list[str]) -> dict:
    """Everything the template shows besides the metadata."""
    recipe, dataset, val, test, history = run.recipe, run.dataset, run.val, run.test, run.history
    model_info = model_summary(recipe, model)
    summary = (f"{model_info['architecture']} with a {model_info['encoder']} encoder for semantic segmentation of "
               f"{dataset.name} images into {len(val['class_names'])} classes, trained "
               f"{model_info['initialisation']} with hf_seg. Validation mIoU {pct(val['mean_iou'])} %"
               + (f", test mIoU {pct(test['mean_iou'])} %." if test else "; not evaluated on the test split yet."))
    return {
        "title": f"{recipe.name} ({dataset.name})",
        "summary": summary,
        "description": recipe.description,
        "repo_id": repo_id,
        "model": model_info,
        "classes": val["class_names"],
        "ignore_index": model.config.semantic_loss_ignore_index,
        "dataset": {"name": dataset.name, "about": dataset.about, "citation": dataset.citation,
                    "intended_use": f"Semantic segmentation of images like those of {dataset.name}; research, teaching "
                                    "and as a baseline to compare other models against."},
        "split": split_summary(run.split),
        "augmentation": augmentation_text(recipe.data.augment),
        "hyperparameters": hyperparameters(recipe),
        "training": {"epochs": history[-1]["epoch"], "max_epochs": recipe.train.epochs, "steps": history[-1]["step"],
                     "minutes": f"{sum(r['seconds'] for r in history) / 60:.1f}",
                     "best_epoch": val["epoch"], "best_step": val["step"]},
        "curves": "curves.png" if "curves.png" in files else None,
        "val": metrics_block(val),
        "test": metrics_block(test) if test else None,
        "efficiency": efficiency_block(run.efficiency) if run.efficiency else None,
        "limitations": [*dataset.limitations, *GENERAL_LIMITATIONS,
                        *(["Trained from scratch on a small dataset: a pretrained encoder usually does much better."]
                          if recipe.model.pretrained is None else [])],
        "files": [("model.safetensors", "the weights (safetensors)"),
                  ("config.json", "architecture and class names (`id2label`)"),
                  ("preprocessor_config.json", "the input preprocessing, for `AutoImageProcessor`")]
                 + [(name, what) for name, what in COPIED.items() if name in files],
    }


def render_card(run: RunRecord, repo_id: str, model, files: list[str], license: Optional[str] = None,
                template: Path = TEMPLATE) -> ModelCard:
    """The model card (YAML metadata + markdown) of a run, parsed back by huggingface_hub's ModelCard."""
    if not Path(template).is_file():
        raise HubError(f"model-card template '{template}' is missing; reinstall hf_seg (the template ships inside the package)")
    ctx = card_context(run, repo_id, model, files)
    data = card_data(run, repo_id, license)
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    text = env.from_string(Path(template).read_text(encoding="utf-8")).render(card_data=data.to_yaml(), **ctx)
    return ModelCard(text)
