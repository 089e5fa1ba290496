"""report.md / report.pdf from hand-made study results: page limit, numbered tables, sentences that cite the tables."""

import base64
import re
import zlib
from pathlib import Path

import numpy as np
import pytest

from hf_seg import report
from hf_seg.study import figures as study_figures
from hf_seg.study.aggregate import RunResult, summarise
from hf_seg.study.evidence import plateau
from hf_seg.report import ReportError, make_report
from hf_seg.report.document import _code_text, _seeds_text, build_document
from hf_seg.report.markdown import to_markdown
from hf_seg.report.pdf import to_pdf
from hf_seg.report.prose import answer, cost_answer, efficiency_answer, plateau_answer, schedule_text, speed_source_text
from hf_seg.runs import write_json
from hf_seg.study.plan import load_study, plan_runs, resolve_recipe

from conftest import REPO  # noqa: E402

NAMES = ["Sky", "Road", "Car", "Pedestrian", "Bicyclist", "Pole"]
GROUPS = {
    "architectures": {"unet": {}, "fpn": {"model.arch": "fpn"}},
    "losses": {"ce": {}, "focal": {"loss.name": "focal"}, "dice": {"loss.name": "dice"}},
    "split": {"split_group": {}, "split_official": {"data.split.mode": "official"}},
    "seeds": {"seed_0": {}, "seed_1": {"train.seed": 1}},
}
# variant -> (val mIoU, test mIoU, images/s, run id shared with)
SCORES = {"unet": (0.50, 0.48, 20.0), "fpn": (0.53, 0.49, 25.0), "focal": (0.48, 0.46, 20.0),
          "dice": (0.44, 0.42, 20.0), "split_official": (0.61, 0.60, 20.0), "seed_1": (0.525, 0.47, 20.0)}
SHARED = {"ce": "unet", "split_group": "unet", "seed_0": "unet"}


def pdf_pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", path.read_bytes()))


def pdf_text(path: Path) -> bytes:
    """Concatenated decoded content streams (ASCII85 + Flate, as reportlab writes them): enough to find drawn words."""
    data, out = path.read_bytes(), []
    for m in re.finditer(rb"<<([^>]*?)>>\s*stream\r?\n(.*?)endstream", data, re.S):
        header, body = m.group(1), m.group(2).strip()
        if b"/Subtype /Image" in header:
            continue
        if b"ASCII85Decode" in header:
            body = base64.a85decode(body[:-2] if body.endswith(b"~>") else body)
        out.append(zlib.decompress(body) if b"FlateDecode" in header else body)
    return b"\n".join(out)


def fake_run(run_id: str, variant: str, members: list, recipe: dict, val: float, test: float, fps: float) -> RunResult:
    """A finished run with made-up but consistent metrics, efficiency and curves."""
    rng = np.random.default_rng(len(run_id))
    per_class = np.clip(test + rng.normal(0, 0.1, len(NAMES)), 0, 1).tolist()
    per_class[3] = test / 4  # a rare class
    test_hash = recipe["data"]["split"]["mode"]
    metrics = lambda miou, pc: {"mean_iou": miou, "mean_dice": miou + 0.1, "overall_accuracy": 0.8 + miou / 10,
                                "per_category_iou": pc, "class_names": NAMES,
                                "confusion_matrix": np.full((len(NAMES), len(NAMES)), 40).tolist()}
    history = [{"epoch": e, "train_loss": 2.0 / e, "val_mean_iou": val * e / 3, "seconds": 30.0} for e in (1, 2, 3)]
    efficiency = {"params": {"total": 14_300_000 if recipe["model"]["arch"] == "unet" else 13_000_000},
                  "flops_per_image": 8e9, "encoder_flops": {"encoder_share": 0.43}, "fps": fps, "precision": "bf16",
                  "device_name": "test CPU"}
    test_metrics = {**metrics(test, per_class), "evaluation": {"split_hash": test_hash, "images": 50 if test_hash == "group" else 233}}
    return RunResult(run_id, variant, recipe["train"]["seed"], members, recipe, history,
                     {**metrics(val, per_class), "epoch": 3}, test_metrics, efficiency)


def make_run(variant: str, members: list, tmp_path: Path) -> RunResult:
    val, test, fps = SCORES[variant]
    overrides = {k: v for g in GROUPS.values() for name, ov in g.items() if name == variant for k, v in ov.items()}
    recipe = {"name": variant, "output_dir": str(tmp_path / variant),
              "data": {"source": "camvid", "augment": ["hflip"], "image_size": [64, 96], "class_weights": None,
                       "max_train_samples": 16,
                       "split": {"mode": overrides.get("data.split.mode", "group"), "fractions": [0.7, 0.15, 0.15],
                                 "seed": 0, "block_seconds": 30.0, "buffer_seconds": 2.0}},
              "model": {"arch": overrides.get("model.arch", "unet"), "encoder": "resnet18", "pretrained": None},
              "loss": {"name": overrides.get("loss.name", "ce")},
              "optim": {"lr": 0.002, "weight_decay": 0.01, "schedule": "poly", "warmup_steps": 0, "max_grad_norm": 1.0},
              "train": {"seed": overrides.get("train.seed", 0), "epochs": 3, "max_steps": None, "batch_size": 4, "eval_every": 1,
                        "mixed_precision": "bf16"}}
    return fake_run(f"{variant}-s{recipe['train']['seed']}", variant, members, recipe, val, test, fps)


def fake_split(mode: str, run_ids: list[str]) -> dict:
    freqs = [0.3, 0.4, 0.2, 0.004, 0.006, 0.09]
    sizes = {"train": 400, "validation": 90, "test": 50} if mode == "group" else {"train": 367, "validation": 101, "test": 233}
    return {"label": mode, "run_ids": run_ids, "hash": {s: f"{mode}-{s}" for s in sizes},
            "leak_free": mode == "group", "shared_groups": 0 if mode == "group" else 2,
            "temporal_leaks": 0 if mode == "group" else 3, "min_gap_seconds": 2.0,
            "splits": {s: {"images": n, "sequences": {"0001TP": n // 2, "Seq05VD": n - n // 2},
                           "class_frequencies": freqs, "min_seconds_to_train": 5.0 if mode == "group" else 0.1}
                       for s, n in sizes.items()}}


def add_fake_failure(res: dict, out: Path, shape: tuple[int, int]) -> None:
    """The best model's failure analysis and its two figures, made up."""
    rng = np.random.default_rng(0)
    label = rng.integers(0, len(NAMES), shape).astype(np.uint8)
    examples = [{"kind": k, "id": f"img{i}", "miou": 0.5, "image": rng.integers(0, 255, (*shape, 3), dtype=np.uint8),
                 "label": label, "pred": label} for i, k in enumerate(["best"] * 3 + ["worst"] * 3)]
    band = {"band_px": 3, "band_error": 0.4, "interior_error": 0.1, "band_share_of_pixels": 0.2, "band_share_of_errors": 0.5}
    sizes = {"buckets": ["small <1024", "medium 1024-9216", "large >=9216"], "classes": NAMES,
             "iou": [[0.1, 0.5, None]] * len(NAMES), "bucket_iou": [0.1, 0.5, 0.8]}
    res["failure"] = {"run_id": res["best"]["run_id"], "images": 50, "band": band, "size_iou": sizes,
                      "examples_one_per_group": True,
                      "per_image": {"mean": 0.5, "median": 0.5, "min": 0.2, "max": 0.8},
                      "examples": [{"kind": e["kind"], "id": e["id"], "miou": 0.5} for e in examples],
                      "hardest": [{"class": "Pedestrian", "iou": 0.12, "confused_with": [{"class": "Road", "share": 0.3}]}]}
    res["figures"]["examples"] = study_figures.plot_examples(examples, NAMES, [[i * 40, 0, 0] for i in range(6)], 255,
                                                             out / "examples.png")
    res["figures"]["failures"] = study_figures.plot_failures(band, sizes, np.eye(len(NAMES)), NAMES, out / "failures.png")


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> tuple[dict, Path]:
    tmp_path = tmp_path_factory.mktemp("study")
    out = tmp_path / "analysis"
    out.mkdir()
    members: dict[str, list] = {}
    for group, variants in GROUPS.items():
        for v in variants:
            members.setdefault(SHARED.get(v, v), []).append([group, v])
    runs = [make_run(v, m, tmp_path) for v, m in members.items()]
    plan = {"study": {"name": "tiny", "description": "A hand-made study.", "seeds": [0], "groups": GROUPS,
                      "base_recipe": "recipes/unet_resnet18_cpu.json", "file": "tiny.json"}}
    splits = [fake_split("group", [r.run_id for r in runs if r.variant != "split_official"]),
              fake_split("official", ["split_official-s0"])]
    plan["study"]["resolved_base"] = next(r.recipe for r in runs if r.variant == "unet")
    res = summarise(plan, runs, splits, out)
    add_fake_failure(res, out, (24, 32))
    res["sam"] = []
    return res, tmp_path


def test_summary_picks_best_by_validation_on_the_common_split(results):
    res, _ = results
    # split_official has the highest validation mIoU but was scored on another split: it cannot be "best"
    assert res["best"]["variant"] == "fpn"
    assert res["groups"]["architectures"]["role"] == "architectures"
    assert res["groups"]["losses"]["role"] == "losses"
    assert res["groups"]["split"]["role"] == "split"
    assert res["groups"]["seeds"]["role"] == "seeds"
    assert "split_official" not in res["pareto_front"]
    assert res["pareto_front"] == ["fpn"]  # fastest and most accurate among comparable variants
    assert res["rare_classes"] == ["Pedestrian", "Bicyclist"]


def test_leakage_probes_on_the_same_test_images_answer_their_group_only(tmp_path):
    """Variants trained on chosen frames share the test images of the main split but not its training set: they must
    not become the best model, join the Pareto front or the cost ranges, however well they score."""
    base = make_run("unet", [["architectures", "unet"], ["leakage", "unet"]], tmp_path)
    fpn = make_run("fpn", [["architectures", "fpn"]], tmp_path)
    probes = []
    for name, frames, val, test in (("leak_far", "far_from_test", 0.70, 0.65), ("leak_near", "near_test", 0.72, 0.80)):
        recipe = {**base.recipe, "name": name,
                  "data": {**base.recipe["data"], "split": {**base.recipe["data"]["split"], "train_frames": frames}}}
        probes.append(fake_run(f"{name}-s0", name, [["leakage", name]], recipe, val, test, 20.0))
    groups = {"architectures": {"unet": {}, "fpn": {"model.arch": "fpn"}},
              "leakage": {"unet": {}, "leak_far": {"data.split.train_frames": "far_from_test"},
                          "leak_near": {"data.split.train_frames": "near_test"}}}
    plan = {"study": {"name": "leak", "description": "", "seeds": [0], "groups": groups, "file": "leak.json",
                      "base_recipe": "recipes/unet_resnet18_cpu.json", "resolved_base": base.recipe}}
    splits = [fake_split("group", ["unet-s0", "fpn-s0"]), fake_split("group", ["leak_far-s0"]),
              fake_split("group", ["leak_near-s0"])]
    (tmp_path / "analysis").mkdir()
    res = summarise(plan, [base, fpn, *probes], splits, tmp_path / "analysis")
    assert res["comparable"] == ["unet", "fpn"] and res["main_split"] == 0
    assert res["best"]["variant"] == "fpn" and res["pareto_front"] == ["fpn"]
    assert res["groups"]["leakage"]["role"] == "split"
    leak = answer(res, "leakage")
    assert leak.startswith("Leakage (leakage), on the same 50 test images:") and "leak_near" in leak
    assert "leak" not in efficiency_answer(res) + cost_answer(res)


def test_leak_effect_is_separated_from_the_training_sets_own_difference_on_leak_free_validation(tmp_path):
    """With validation leak-free in both probes, the answer gives validation as the control and the paired test-minus-
    validation difference as the leak's own share; validation near a training frame in one probe drops the control."""
    base = make_run("unet", [["architectures", "unet"]], tmp_path)
    scores = {("leak_far", 0): (0.36, 0.37), ("leak_far", 1): (0.38, 0.385),
              ("leak_near", 0): (0.35, 0.385), ("leak_near", 1): (0.368, 0.406)}
    runs = []
    for (name, seed), (val, test) in scores.items():
        frames = "far_from_test" if name == "leak_far" else "near_test"
        recipe = {**base.recipe, "name": name, "train": {**base.recipe["train"], "seed": seed},
                  "data": {**base.recipe["data"], "split": {**base.recipe["data"]["split"], "train_frames": frames}}}
        runs.append(fake_run(f"{name}-s{seed}", name, [["leakage", name]], recipe, val, test, 20.0))
    groups = {"architectures": {"unet": {}}, "leakage": {"leak_far": {"data.split.train_frames": "far_from_test"},
                                                         "leak_near": {"data.split.train_frames": "near_test"}}}
    plan = {"study": {"name": "leak", "description": "", "seeds": [0, 1], "groups": groups, "file": "leak.json",
                      "base_recipe": "recipes/unet_resnet18_cpu.json", "resolved_base": base.recipe}}
    far, near = fake_split("group", ["leak_far-s0", "leak_far-s1"]), fake_split("group", ["leak_near-s0", "leak_near-s1"])
    far["hash"] = {**far["hash"], "train": "far"}
    near["hash"] = {**near["hash"], "train": "near"}
    near["splits"]["validation"]["min_seconds_to_train"] = 16.0
    (tmp_path / "analysis").mkdir()
    res = summarise(plan, [base, *runs], [fake_split("group", ["unet-s0"]), far, near], tmp_path / "analysis")
    leak = answer(res, "leakage")
    assert "Control: the same 90 validation images lie at least 5.0 s from every training frame" in leak
    assert "validation mIoU leak_far 37.0, leak_near 35.9" in leak
    # test - validation: far +1.0, +0.5; near +3.5, +3.8 -> paired +2.5, +3.3, mean +2.9 (a wide 2-seed interval)
    share = leak.split("on the test images specifically: the leak, plus any closer match to the test scenes): ")[1]
    assert share.startswith("leak_near +2.9 [") and "inconclusive" in share
    near["splits"]["validation"]["min_seconds_to_train"] = 1.0  # validation leaks too: it can no longer be the control
    assert "Control" not in answer(res, "leakage")


def test_sentences_cite_the_tables_numbers(results):
    res, _ = results
    md, tables, figures = to_markdown(build_document(res))
    assert ("Architecture (architectures): test mIoU, mean of up to 1 seed: fpn 49.0, unet 48.0. Paired differences "
            "from unet: fpn n/a (fewer than 2 shared seeds).") in md
    assert "Loss (losses): test mIoU, mean of up to 1 seed: ce 48.0, focal 46.0, dice 42.0." in md
    assert ("split_official (leaky: test frames 0.1 s from train) scores test mIoU 60.0 on its own 233-image test set "
            "vs 48.0 for split_group (leak-free, 50 images): +12.0 points (different test images") in md
    assert "validation mIoU from 50.0 to 52.5 (+2.5 points)" in md
    assert "assigns blocks of 30 s of each sequence to train/validation/test in proportions 0.7/0.15/0.15" in md
    # every fake curve rises to its last epoch: 3 epochs, value at epoch 2 against epoch 3, a gain of val/3 > 1 point
    assert "Training to a plateau: 0 of 6 runs pass" in md and "flagged: dice-s0 (+14.7)" in md
    # one late evaluation: no std; the variants that are unet's runs share its row
    assert "| unet = ce = split_group = seed_0 | 3 (at 2) | s0: 33.3 -> 50.0 (+16.7) | s0 +16.7 | FLAGGED: s0 |" in md
    assert md.count("| unet = ce = split_group = seed_0 |") == 2 and "\n| ce |" not in md
    assert "improved on their own best value up to 75%" not in md  # rising curves: their flags are not noise
    # the best run's confusion matrix counts 36 x 40 = 1,440 pixels over its 50 test images
    assert "Annotation: a mask labels 29 pixels per test image on average" in md
    assert "the test score counts 1,440 labelled pixels in the 6x6 confusion matrix, against 50 decisions" in md
    # the comparison table holds the same numbers as the sentences
    row = next(line for line in md.splitlines() if line.startswith("| architectures | fpn *"))
    assert "| 53.0 | 49.0 |" in row
    # cross-references name the numbers the tables and figures got, whatever comes before them
    number = {name: re.search(rf"\*\*Table (\d+): {name}", md)[1] for name in ("Splits", "Variants", "Comparison")}
    assert "@table" not in md and "@figure" not in md
    assert f"Table {number['Splits']} audits every split" in md
    assert f"each variant changes only what Table {number['Variants']} lists" in md
    assert f"Table {number['Comparison']} has every variant" in md
    assert "validation every 1 epoch." in md
    # the setup table says what a null means, and which groups use fewer seeds
    assert "| model | unet / resnet18, pretrained: none (from scratch) |" in md
    assert "| training | 3 epochs, batch 4, precision bf16, seeds 0 |" in md
    assert _seeds_text({"seeds": [0, 1, 2], "group_seeds": {"encoders": [0, 1]}}) == "seeds 0, 1, 2 (encoders: 0, 1)"


def test_report_files_pages_and_tables(results, monkeypatch):
    res, study_dir = results
    blocks = build_document(res)
    md, tables, figures = to_markdown(blocks)
    pages = to_pdf(blocks, study_dir, study_dir / "report.pdf")
    assert 1 <= pages <= report.MAX_PAGES
    assert pdf_pages(study_dir / "report.pdf") == pages
    assert len(tables) == 8 and len(figures) == 6
    assert md.count("**Table ") == 8 and md.count("![Figure ") == 6
    text = pdf_text(study_dir / "report.pdf")
    for i in range(1, 9):
        assert f"Table {i}:".encode() in text
    assert b"Table 9:" not in text


def test_an_interim_report_says_so_in_its_title_and_first_paragraph(results):
    res, _ = results
    interim = {"finished": 5, "planned": 9, "left_out": [{"group": "losses", "waiting": ["dice"], "dropped": False},
                                                         {"group": "encoders", "waiting": ["r34", "r50"], "dropped": True}]}
    blocks = build_document({**res, "interim": interim})
    assert blocks[0] == ("title", "Study tiny (INTERIM: 5 of 9 runs)")
    assert blocks[1][0] == "p" and blocks[1][1].startswith("Interim report: 5 of the 9 planned runs have finished.")
    assert ("Groups not shown yet (each needs its reference and one other variant): encoders (waiting for r34, r50). "
            "Groups shown without some variants: losses (waiting for dice).") in blocks[1][1]
    assert build_document(res)[0] == ("title", "Study tiny")


def test_sam_table_added_when_a_comparison_exists(results):
    res, _ = results
    method = {"mean_iou": 0.4, "mean_dice": 0.5, "overall_accuracy": 0.7, "unclaimed_share": 0.1,
              "sizes": {"buckets": ["small <1024 px", "medium", "large"], "iou": [0.1, 0.4, 0.7]},
              "seconds_per_image": {"median": 0.05, "mean": 0.06}}
    sam = {"protocol": "ORACLE PROMPTS: boxes.", "settings": {"prompt": "box"}, "images": 12, "run": "fpn-s0",
           "split": "test", "sam": "facebook/sam-vit-base", "methods": {"trained": method, "sam": {**method, "mean_iou": 0.6}}}
    md, tables, _ = to_markdown(build_document({**res, "sam": [sam]}))
    assert len(tables) == 9 and tables[-1].startswith("SAM with oracle prompts")
    assert "| fpn-s0 | box, 12 test images | sam (facebook/sam-vit-base) | 60.0 |" in md
    assert "ORACLE PROMPTS: boxes." in md


def test_two_seed_groups_are_warned_that_their_intervals_are_wide(results):
    res, _ = results
    assert "degree of freedom" not in to_markdown(build_document(res))[0]  # one seed: no interval, no warning
    d = {"seeds": [0, 1], "differences": [0.01, 0.03], "mean": 0.02, "low": -0.107, "high": 0.147,
         "verdict": "inconclusive"}
    losses = {**res["groups"]["losses"], "paired": {**res["groups"]["losses"]["paired"],
                                                    "focal": {"test_miou": d, "rare_iou": d, "val_miou": d}}}
    md = to_markdown(build_document({**res, "groups": {**res["groups"], "losses": losses}}))[0]
    assert "With 2 seeds (losses) t has 1 degree of freedom and the interval reaches 6.35 times the gap" in md
    assert "| losses | focal - ce | +2.0 [-10.7, +14.7] points over 2 seeds, inconclusive |" in md


def test_the_examples_paragraph_says_whether_they_were_spread_over_groups(results):
    res, _ = results
    assert "within its quarter of the ranking (at least as many images as it shows), one image per split group" in to_markdown(build_document(res))[0]
    older = {**res, "failure": {**res["failure"], "examples_one_per_group": False}}
    assert "ranked without their groups" in to_markdown(build_document(older))[0]


def test_page_limit_is_enforced(results, monkeypatch, tmp_path):
    res, study_dir = results
    monkeypatch.setattr(report, "MAX_PAGES", 1)
    write_json(study_dir / "analysis" / "results.json", res)
    (study_dir / "report.md").write_text("the earlier report")
    (study_dir / "report.pdf").write_bytes(b"the earlier pdf")
    with pytest.raises(ReportError, match="more than 1"):
        make_report(study_dir, aggregate_first=False)
    # neither file is replaced by a report over the limit, and no temporary file is left
    assert (study_dir / "report.md").read_text() == "the earlier report"
    assert (study_dir / "report.pdf").read_bytes() == b"the earlier pdf" and not list(study_dir.glob(".report*"))
    monkeypatch.setattr(report, "MAX_PAGES", 10)
    files = make_report(study_dir, aggregate_first=False)
    assert files.md.read_text().startswith("# Study tiny") and pdf_pages(files.pdf) == files.pages


def test_results_of_another_format_are_refused_without_aggregating(results):
    """A results.json written before its keys changed (no "format": an older hf_seg) is named in one line with the
    fix, instead of failing on the first key the report misses; the earlier report is left as it was."""
    res, study_dir = results
    older = {k: v for k, v in res.items() if k != "format"}
    write_json(study_dir / "analysis" / "results.json", older)
    (study_dir / "report.pdf").write_bytes(b"the earlier pdf")
    with pytest.raises(ReportError, match=r"results format 1, this hf_seg renders format \d+; run `hf-seg report .*"
                                          "without --no-aggregate"):
        make_report(study_dir, aggregate_first=False)
    assert (study_dir / "report.pdf").read_bytes() == b"the earlier pdf"


@pytest.mark.parametrize("study_file", ["recipes/studies/camvid_cpu.json", "recipes/studies/camvid_quick.json",
                                        "recipes/studies/camvid_gpu.json"])
def test_the_shipped_studies_fit_the_page_limit(study_file, tmp_path, monkeypatch):
    """Every planned run of the real study files, with made-up results: the report stays within MAX_PAGES."""
    monkeypatch.chdir(REPO)
    study = load_study(study_file, out=tmp_path)
    planned = plan_runs(study)
    rng = np.random.default_rng(1)
    runs = [fake_run(r.run_id, r.variant, r.members, r.recipe, *rng.uniform(0.3, 0.6, 2), rng.uniform(2, 30))
            for r in planned]
    modes = {r.recipe["data"]["split"]["mode"] for r in planned}
    splits = [fake_split(m, [r.run_id for r in planned if r.recipe["data"]["split"]["mode"] == m]) for m in sorted(modes)]
    plan = {"study": {"name": study.name, "description": study.description, "seeds": study.seeds, "groups": study.groups,
                      "base_recipe": str(study.base_recipe), "file": study_file,
                      "resolved_base": resolve_recipe(study, {}, study.seeds[0])}}
    (tmp_path / "analysis").mkdir()
    res = summarise(plan, runs, splits, tmp_path / "analysis")
    add_fake_failure(res, tmp_path / "analysis", (360, 480))
    res["sam"] = []
    blocks = build_document(res)
    _, tables, figures = to_markdown(blocks)
    pages = to_pdf(blocks, tmp_path, tmp_path / "report.pdf")
    assert pages <= report.MAX_PAGES and pdf_pages(tmp_path / "report.pdf") == pages
    assert len(tables) == 8 and len(figures) == 6


def test_flags_of_flat_curves_with_a_low_value_at_75_percent_are_told_apart():
    dip = plateau([{"epoch": e, "val_mean_iou": v} for e, v in enumerate([0.3, 0.45, 0.46, 0.45, 0.46, 0.44, 0.455, 0.458], 1)])
    rise = plateau([{"epoch": e, "val_mean_iou": v} for e, v in enumerate([0.3, 0.4, 0.42, 0.43, 0.44, 0.44, 0.46, 0.47], 1)])
    text = plateau_answer({"runs": {"a-s0": {"plateau": dip}, "b-s0": {"plateau": rise}, "c-s0": {"plateau": None}}})
    assert text.startswith("Training to a plateau: 0 of 3 runs pass")
    assert ("flagged: a-s0 (+1.8), b-s0 (+3.0). Of the flagged, 1 of 2 improved on their own best value up to 75% by less "
            "than 1 point (a-s0 -0.2)") in text
    assert text.endswith("not checkable (too few evaluations): c-s0.")


def test_the_schedule_in_words_names_the_decay_end_and_floor_only_when_set():
    plain = {"schedule": "cosine", "lr": 0.002, "warmup_steps": 50}
    assert schedule_text(plain) == "cosine learning rate from 0.002 after 50 warm-up steps"
    held = schedule_text({**plain, "decay_fraction": 0.75, "min_lr_ratio": 0.05})
    assert held.endswith("decayed over the first 75% of the steps to 5% of its peak and held there")


def test_the_code_sentence_links_the_repository_or_says_none_was_recorded():
    study = {"file": "recipes/studies/s.json", "repository": "https://example.org/hf_seg"}
    assert "study file recipes/studies/s.json is in repository https://example.org/hf_seg," in _code_text(study)
    assert "is in its repository (no link was recorded" in _code_text({**study, "repository": None})


def test_speeds_say_where_they_were_measured_and_warn_when_machines_differ():
    assert "every model timed on one machine (Xeon) in 3 interleaved rounds" in speed_source_text(
        {"kind": "study", "devices": ["Xeon"], "rounds": 3})
    mixed = speed_source_text({"kind": "runs", "devices": ["EPYC", "Xeon"]})
    assert "on 2 different CPU/GPU models (EPYC, Xeon): compare them with care" in mixed
    assert speed_source_text({"kind": "runs", "devices": ["Xeon"]}).endswith("all on Xeon.")
