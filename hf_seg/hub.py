"""Hub publishing: turn a run folder into an upload folder (weights, config, model card, metrics) and push it."""

from __future__ import annotations

import fnmatch
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import httpx2
import jinja2
from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, get_token
from huggingface_hub.errors import HFValidationError, HfHubHTTPError, OfflineModeIsEnabled
from huggingface_hub.utils import validate_repo_id

from hf_seg.metrics import format_metrics_table
from hf_seg.recipe import Recipe, recipe_from_dict
from hf_seg.runfolder import read_history, read_json

TEMPLATE = Path(__file__).resolve().parents[1] / "model_cards" / "template.md.j2"
"""The model-card template; model_cards/README.md says how it is filled."""

UPLOAD_DIRNAME = "hub_upload"
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
OURS = ("README.md", "*.json", "*.jsonl", "*.safetensors", "*.png")
"""Name patterns of everything an upload folder holds; a folder with anything else is not replaced."""
SUMMARY_METRICS = (("mean_iou", "Mean IoU (%)"), ("mean_dice", "Mean Dice (%)"),
                   ("overall_accuracy", "Pixel accuracy (%)"), ("mean_accuracy", "Mean class accuracy (%)"))


class HubError(ValueError):
    """A run cannot be published or the push failed; the message says why and what to do."""


@dataclass(frozen=True)
class DatasetCard:
    """What a model card says about a training dataset: name, Hub id, licence, citation and caveats."""

    name: str
    hub_id: Optional[str]
    about: str
    license: str = "other"
    license_name: Optional[str] = None
    citation: str = ""
    limitations: tuple[str, ...] = ()


CAMVID_CITATION = """@article{brostow2009semantic,
  title   = {Semantic object classes in video: A high-definition ground truth database},
  author  = {Brostow, Gabriel J. and Fauqueur, Julien and Cipolla, Roberto},
  journal = {Pattern Recognition Letters},
  volume  = {30},
  number  = {2},
  pages   = {88--97},
  year    = {2009}
}"""

CAMVID = DatasetCard(
    name="CamVid",
    hub_id="camvid",
    about=("[CamVid](http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/) (Brostow et al., 2009) in the SegNet "
           "packaging: 701 densely labelled 480×360 frames from four driving videos recorded in Cambridge, UK "
           "(sequences 0001TP, 0006R0, 0016E5 and Seq05VD; 0001TP at dusk), 11 classes plus void (ignored)."),
    license_name="camvid-research-only",
    citation=CAMVID_CITATION,
    limitations=(
        "Trained on four video sequences of one city (Cambridge, UK), one camera, daylight and one dusk sequence: "
        "expect lower accuracy on other cities, cameras, weather, night scenes and image sizes.",
        "Pedestrian, Bicyclist, SignSymbol, Pole and Fence cover only a few percent of the pixels; their IoU is low "
        "and noisy, so read the per-class table, not only the mean.",
        "Frames of one video are strongly correlated; a small number of independent scenes lies behind each split.",
        "CamVid states no licence: use these weights for research only.",
    ),
)

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


GENERAL_LIMITATIONS = (
    "Not for safety-critical use, such as controlling a vehicle: no robustness, calibration or failure analysis "
    "was done.",
)


def check_repo_id(repo_id: str) -> str:
    """A Hub model id 'user/name', or a HubError saying what is wrong with it."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise HubError(f"repo id '{repo_id}' is invalid ({str(e).splitlines()[0]}); use 'user/name'") from e
    if repo_id.count("/") != 1:
        raise HubError(f"repo id '{repo_id}' has no namespace; use 'user/name' or 'organisation/name'")
    return repo_id


def check_run_dir(run_dir: Path) -> None:
    """A finished run folder: the files a card and a checkpoint need are there."""
    if not Path(run_dir).is_dir():
        raise HubError(f"run folder '{run_dir}' does not exist; pass a folder written by scripts/train.py")
    for name in REQUIRED:
        if not (Path(run_dir) / name).exists():
            raise HubError(f"'{run_dir}' is not a finished run folder: '{name}' is missing; train it to the end first")


def dataset_card(recipe: Recipe) -> DatasetCard:
    """The dataset description for the recipe's data source."""
    source = recipe.data.source
    if source == "camvid":
        return CAMVID
    if source == "hub":
        dataset_id = recipe.data.source_options["dataset_id"]
        return DatasetCard(name=dataset_id, hub_id=dataset_id,
                           about=f"The Hub dataset [{dataset_id}](https://huggingface.co/datasets/{dataset_id}).")
    name = Path(recipe.data.root).name
    return DatasetCard(name=name, hub_id=None, about=f"A local image/mask folder dataset ('{name}'), not on the Hub.")


def read_run(run_dir: Path) -> RunRecord:
    """Recipe, split, history and metrics of a finished run folder."""
    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    recipe = recipe_from_dict(read_json(run_dir / "recipe.json"))
    optional = {name: read_json(run_dir / name) if (run_dir / name).is_file() else None
                for name in ("test_metrics.json", "efficiency.json")}
    return RunRecord(recipe=recipe, dataset=dataset_card(recipe), split=read_json(run_dir / "split.json"),
                     history=read_history(run_dir / "history.jsonl"), val=read_json(run_dir / "val_metrics.json"),
                     test=optional["test_metrics.json"], efficiency=optional["efficiency.json"])


def _pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _millions(n: int) -> str:
    return f"{n / 1e6:.1f} M"


def model_summary(recipe: Recipe, model) -> dict:
    """Architecture, encoder, initialisation and size of the published model."""
    cfg = recipe.model
    segformer = cfg.arch.lower() == "segformer"
    if cfg.pretrained is None:
        init = "from scratch"
    else:
        init = f"from pretrained {'weights' if segformer else 'encoder weights'} `{cfg.pretrained}`"
    return {
        "family": "segformer" if segformer else "smp",
        "arch": cfg.arch,
        "architecture": "SegFormer (transformers)" if segformer
        else f"{type(model.smp_model).__name__} (segmentation_models_pytorch)",
        "encoder": f"MiT-{cfg.encoder}" if segformer else f"{cfg.encoder}",
        "initialisation": init,
        "params": _millions(sum(p.numel() for p in model.parameters())),
        "image_size": list(recipe.data.image_size),
    }


def image_processor(recipe: Recipe):
    """The eval-time preprocessing of hf_seg.data as a transformers image processor: resize, /255, ImageNet mean/std."""
    from transformers import SegformerImageProcessor

    from hf_seg.data.augment import IMAGENET_MEAN, IMAGENET_STD

    height, width = recipe.data.image_size
    return SegformerImageProcessor(size={"height": height, "width": width}, do_rescale=True, rescale_factor=1 / 255,
                                   do_normalize=True, image_mean=IMAGENET_MEAN.flatten().tolist(),
                                   image_std=IMAGENET_STD.flatten().tolist(), do_reduce_labels=False)


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
    block = {key: _pct(metrics[key]) for key, _ in SUMMARY_METRICS}
    block["table"] = format_metrics_table(metrics)
    evaluation = metrics.get("evaluation") or {}
    block["images_note"] = f"On {evaluation['images']} images: " if "images" in evaluation else ""
    block["when"] = evaluation.get("time", "at an unrecorded time")
    block["forced"] = bool(evaluation.get("forced"))
    return block


def efficiency_block(eff: dict) -> dict:
    """Parameters, MACs/FLOPs and speed rows from efficiency.json (scripts/benchmark.py's output)."""
    try:
        rows = [{"precision": precision, "batch_size": t["batch_size"], "images_per_s": f"{t['images_per_s']:.1f}",
                 "ms_per_image": f"{t['latency_ms_per_image']:.1f}"}
                for precision, timings in eff["speed"].items() for t in timings]
        return {"params": _millions(eff["params"]["total"]), "macs": f"{eff['macs_per_image'] / 1e9:.2f}",
                "flops": f"{eff['flops_per_image'] / 1e9:.2f}", "method": eff["flops_method"],
                "image_size": eff["image_size"], "device": eff["device_name"], "threads": eff.get("threads"),
                "rows": rows}
    except (KeyError, TypeError) as e:
        raise HubError(f"efficiency.json lacks key {e} of a benchmark result; rewrite it with scripts/benchmark.py "
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
            *([model.encoder] if model.encoder else []), *([] if segformer else ["segmentation-models-pytorch"]),
            run.recipe.data.source]
    results = {"validation": run.val, **({"test": run.test} if run.test else {})}
    return ModelCardData(
        library_name="transformers" if segformer else "hf_seg",
        pipeline_tag="image-segmentation",
        license=license or dataset.license,
        license_name=None if license else dataset.license_name,
        datasets=[dataset.hub_id] if dataset.hub_id else None,
        base_model=model.pretrained if model.pretrained and "/" in model.pretrained else None,
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
               f"{model_info['initialisation']} with hf_seg. Validation mIoU {_pct(val['mean_iou'])} %"
               + (f", test mIoU {_pct(test['mean_iou'])} %." if test else "; not evaluated on the test split yet."))
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
        raise HubError(f"model-card template '{template}' is missing; restore model_cards/template.md.j2 from the repo")
    ctx = card_context(run, repo_id, model, files)
    data = card_data(run, repo_id, license)
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    text = env.from_string(Path(template).read_text(encoding="utf-8")).render(card_data=data.to_yaml(), **ctx)
    return ModelCard(text)


def _clear_upload_folder(folder: Path) -> None:
    """Remove a previous upload folder, refusing one that holds anything an upload folder never holds."""
    if not folder.exists():
        return
    foreign = [p.name for p in folder.iterdir() if p.is_dir() or not any(fnmatch.fnmatch(p.name, pat) for pat in OURS)]
    if foreign:
        raise HubError(f"'{folder}' holds '{foreign[0]}', which an hf_seg upload folder never holds; "
                       "pass a new or empty folder")
    shutil.rmtree(folder)


def build_upload_folder(run_dir: Path, repo_id: str, folder: Optional[Path] = None,
                        license: Optional[str] = None) -> Path:
    """Write what a Hub repo gets from a run: best weights (safetensors) + config, card, metrics, recipe, curves."""
    from hf_seg.models import load_model

    run_dir = Path(run_dir)
    check_repo_id(repo_id)
    run = read_run(run_dir)
    folder = Path(folder) if folder else run_dir / UPLOAD_DIRNAME
    _clear_upload_folder(folder)
    model = load_model(run_dir / "best")
    model.save_pretrained(folder)
    pickled = sorted(p.name for p in folder.glob("*.bin"))
    if pickled or not list(folder.glob("*.safetensors")):
        raise HubError(f"save_pretrained wrote {pickled or 'no safetensors file'} into '{folder}'; "
                       "only safetensors weights are published")
    image_processor(run.recipe).save_pretrained(folder)
    files = []
    for name in COPIED:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, folder / name)
            files.append(name)
    render_card(run, repo_id, model, files, license).save(folder / "README.md")
    return folder


def upload_plan(folder: Path) -> list[tuple[str, int]]:
    """(relative path, bytes) of every file upload_folder would send."""
    folder = Path(folder)
    return [(str(p.relative_to(folder)), p.stat().st_size) for p in sorted(folder.rglob("*")) if p.is_file()]


def describe_upload(folder: Path, repo_id: str, private: bool) -> str:
    """What a push would do: the repo it creates or reuses and the files with their sizes."""
    plan = upload_plan(folder)
    width = max(len(name) for name, _ in plan)
    lines = [f"would create (or reuse) the {'private' if private else 'public'} model repo '{repo_id}' and upload "
             f"{len(plan)} files ({sum(s for _, s in plan) / 1e6:.2f} MB) from '{folder}':"]
    lines += [f"  {name:<{width}}  {size:>12,d} bytes" for name, size in plan]
    return "\n".join(lines)


def upload(folder: Path, repo_id: str, private: bool = False, commit_message: str = "Upload hf_seg run") -> str:
    """create_repo + upload_folder with the user's saved login or HF_TOKEN; returns the commit URL."""
    check_repo_id(repo_id)
    ready = f"the upload folder is ready at '{folder}'"
    if get_token() is None:
        raise HubError(f"not logged in to the Hugging Face Hub: run `hf auth login` or set HF_TOKEN, then push again ({ready})")
    api = HfApi()
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(folder),
                                 commit_message=commit_message)
    except OfflineModeIsEnabled as e:
        raise HubError(f"cannot push to '{repo_id}': HF_HUB_OFFLINE=1 forbids Hub access; unset it and push again "
                       f"({ready})") from e
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "?"
        hint = "check that your token has write access to that namespace" if status in (401, 403) else "see the Hub's reply"
        raise HubError(f"the Hub refused the push to '{repo_id}' (HTTP {status}: {str(e).splitlines()[0]}); {hint} "
                       f"({ready})") from e
    except httpx2.HTTPError as e:
        raise HubError(f"cannot reach the Hugging Face Hub to push '{repo_id}' ({type(e).__name__}: "
                       f"{str(e).splitlines()[0] if str(e) else 'no detail'}); check the network and push again "
                       f"({ready})") from e
    return info.commit_url


def push_run(run_dir: Path, repo_id: str, private: bool = False, folder: Optional[Path] = None,
             license: Optional[str] = None) -> str:
    """Build the upload folder of a run (run_dir/hub_upload by default) and push it; returns the commit URL."""
    folder = build_upload_folder(run_dir, repo_id, folder, license)
    val = read_json(Path(run_dir) / "val_metrics.json")
    message = f"hf_seg: best checkpoint (epoch {val['epoch']}, val mIoU {_pct(val['mean_iou'])}%)"
    return upload(folder, repo_id, private=private, commit_message=message)
