"""The study report as blocks (headings, paragraphs, bullets, tables, figures), from analysis/results.json alone."""

from __future__ import annotations

from hf_seg.report.blocks import Figure, Table, number_references
from hf_seg.study.evidence import PLATEAU_POINTS
from hf_seg import __version__
from hf_seg.report.prose import (answer, cost_answer, efficiency_answer, failure_answer, imbalance_answer, interval,
                                 overrides_text, pct, plateau_answer, plural, pm, points, schedule_text, split_text,
                                 value_text)


def _split_table(res: dict) -> Table:
    rows = []
    for sp in res["splits"]:
        sizes = {name: sp["splits"][name]["images"] for name in ("train", "validation", "test")}
        gap = sp["splits"]["test"].get("min_seconds_to_train")
        rows.append([sp["label"], str(sizes["train"]), str(sizes["validation"]), str(sizes["test"]),
                     ", ".join(f"{k} {v}" for k, v in sp["splits"]["test"]["sequences"].items()),
                     str(sp["shared_groups"]), str(sp["temporal_leaks"]), "n/a" if gap is None else f"{gap:.1f}",
                     "yes" if sp["leak_free"] else "no", str(len(sp["run_ids"]))])
    return Table(f"Splits used by the study: images per split, test images per sequence, groups in two splits, held-out "
                 f"stretches closer than {res['splits'][0]['min_gap_seconds']} s to a train frame, and the smallest "
                 f"time gap from a test frame to a train frame of its sequence",
                 ["split", "train", "val", "test", "test sequences", "shared groups", "near-train stretches",
                  "test-train gap s", "leak-free", "runs"], rows, key="splits")


def _setup_table(res: dict) -> Table:
    r = res["study"]["resolved_base"]
    d, t, o, l_ = r["data"], r["train"], r["optim"], r["loss"]
    items = [
        ("data source", f"{d['source']} ({len(res['class_names'])} classes, ignore index 255)"),
        ("image size (H x W)", f"{d['image_size'][0]} x {d['image_size'][1]}"),
        ("augmentation", value_text(d["augment"])),
        ("training images cap", value_text(d["max_train_samples"], none="none (every training image)")),
        ("model", f"{r['model']['arch']} / {r['model']['encoder']}, pretrained: "
                  f"{value_text(r['model']['pretrained'], none='none (from scratch)')}"),
        ("loss", f"{l_['name']}, class weights: {value_text(d['class_weights'], none='none')}"),
        ("optimizer", f"AdamW, weight decay {o['weight_decay']}, grad clip "
                      f"{value_text(o['max_grad_norm'], none='none')}; {schedule_text(o)}"),
        ("training", f"{t['epochs']} epochs" + ("" if t["max_steps"] is None else f" (at most {t['max_steps']} steps)")
                     + f", batch {t['batch_size']}, precision {t['mixed_precision']}, " + _seeds_text(res["study"])),
        ("model selection", "best validation mIoU checkpoint; test evaluated once per run"),
    ]
    return Table(f"Setup shared by every run: the base recipe {res['study']['base_recipe']} with the study's profile "
                 "(each variant changes only what @table:variants lists)",
                 ["setting", "value"], [[k, v] for k, v in items])


def _seeds_text(study: dict) -> str:
    """The study's seeds, and the groups that use fewer (group_seeds)."""
    fewer = "; ".join(f"{g}: {', '.join(map(str, seeds))}" for g, seeds in study.get("group_seeds", {}).items())
    return f"seeds {', '.join(map(str, study['seeds']))}" + (f" ({fewer})" if fewer else "")


def _variants_table(res: dict) -> Table:
    rows = []
    for group, spec in res["groups"].items():
        for v in spec["variants"]:
            ids = res["variants"][v]["run_ids"]
            runs = ids[0] if len(ids) == 1 else f"{ids[0].rsplit('-s', 1)[0]} ({len(ids)} seeds)"
            rows.append([group, v, overrides_text(res["variants"][v]["overrides"]), runs])
    return Table("Variants: recipe overrides per group (identical setups share one run)",
                 ["group", "variant", "overrides", "run"], rows, key="variants")


def _comparison_table(res: dict) -> Table:
    rows = []
    for group, spec in res["groups"].items():
        for v in spec["variants"]:
            r = res["variants"][v]
            rows.append([group, v + (" *" if v == spec["best_by_val"] else ""), pm(r["val_miou"], r["val_miou_std"]),
                         pm(r["test_miou"], r["test_miou_std"]), pct(r["test_mdice"]), pct(r["test_pixel_acc"]),
                         f"{r['params_m']:.1f}", f"{r['gflops']:.2f}", f"{r['fps']:.1f}", f"{r['train_minutes']:.1f}"])
    seeds = max(len(r["run_ids"]) for r in res["variants"].values())
    spread = ("mean ± std over each variant's seeds, @table:variants says how many" if seeds > 1 else
              "one seed per variant")
    return Table(f"Comparison (percent, {spread}; * = best of its group on validation; "
                 f"GFLOPs per image, img/s at batch 1, training minutes incl. per-epoch validation)",
                 ["group", "variant", "val mIoU", "test mIoU", "test mDice", "pixel acc", "params M", "GFLOPs", "img/s",
                  "train min"], rows, key="comparison")


def _distinct_variants(res: dict) -> list[tuple[str, dict]]:
    """(label, row) once per set of runs: variants that are the same runs (a group's reference that is another group's
    variant, e.g. unet_resnet18 = ce) share one row, labelled with all their names."""
    names: dict[tuple, list[str]] = {}
    for v, r in res["variants"].items():
        names.setdefault(tuple(r["run_ids"]), []).append(v)
    return [(" = ".join(vs), res["variants"][vs[0]]) for vs in names.values()]


def _per_class_table(res: dict) -> Table:
    names = res["class_names"]
    rows = [[label, *[pct(x) for x in r["test_per_class_iou"]], pct(r["test_miou"])]
            for label, r in _distinct_variants(res)]
    return Table("Test IoU per class (percent; variants that are the same runs share a row)",
                 ["variant", *names, "mIoU"], rows)


def _hardest_table(res: dict) -> Table:
    rows = [[h["class"], pct(h["iou"]), "; ".join(f"{c['class']} ({pct(c['share'])}%)" for c in h["confused_with"])]
            for h in res["failure"]["hardest"]]
    return Table(f"Hardest classes of {res['failure']['run_id']} on test, with the classes their pixels are predicted as",
                 ["class", "IoU", "most often predicted as (share of its pixels)"], rows)


def _sam_table(res: dict) -> Table:
    rows = []
    for sam in res["sam"]:
        for method, m in sam["methods"].items():
            sizes = ", ".join(f"{b.split()[0]} {pct(v)}" for b, v in zip(m["sizes"]["buckets"], m["sizes"]["iou"]))
            seconds = m["seconds_per_image"]["median"]
            rows.append([sam.get("run", ""), f"{sam['settings']['prompt']}, {sam['images']} {sam.get('split', '')} images",
                         method if method == "trained" else f"{method} ({sam.get('sam', '')})", pct(m["mean_iou"]),
                         pct(m["mean_dice"]), pct(m["overall_accuracy"]), pct(m["unclaimed_share"]), sizes,
                         "n/a" if seconds is None else f"{seconds:.2f}"])
    return Table("SAM with oracle prompts vs the trained model on the same images (percent; seconds per image are medians)",
                 ["run", "prompts, images", "method", "mIoU", "mDice", "pixel acc", "unclaimed", "IoU by object size",
                  "s / image"], rows)


def _paired_table(res: dict) -> Table:
    rows = []
    for group, spec in res["groups"].items():
        ref_hash = res["variants"][spec["reference"]]["test_split_hash"]
        for v in spec["variants"][1:]:
            d = spec["paired"][v]
            if res["variants"][v]["test_split_hash"] != ref_hash:  # another test set: a difference, not an effect
                rows.append([group, f"{v} - {spec['reference']}", "other test images: not paired", "n/a"])
                continue
            rows.append([group, f"{v} - {spec['reference']}", interval(d["test_miou"]), interval(d["rare_iou"])])
    two = sorted({g for g, spec in res["groups"].items() for d in spec["paired"].values()
                  if d["test_miou"] and len(d["test_miou"]["seeds"]) == 2})
    caveat = (f". With 2 seeds ({', '.join(two)}) t has 1 degree of freedom and the interval reaches 6.35 times the gap "
              "between the two seeds' differences either side of their mean: only a difference that both seeds agree "
              "on closely is conclusive" if two else "")
    return Table(f"Paired differences from each group's reference (first variant), seed by seed, with 95% t intervals "
                 f"(percentage points; 'inconclusive' when the interval contains 0); rare classes: "
                 f"{', '.join(res['rare_classes'])}{caveat}", ["group", "difference", "test mIoU", "rare-class test IoU"],
                 rows)


def _plateau_table(res: dict) -> Table:
    rows = []
    for v, row in _distinct_variants(res):
        checks = [(res["runs"][i]["seed"], res["runs"][i]["plateau"]) for i in row["run_ids"]]
        if all(c is None for _, c in checks):
            rows.append([v, "n/a", "n/a", "n/a", "not checkable"])
            continue
        per_seed = "; ".join(f"s{s}: {pct(c['at_value'])} -> {pct(c['best_late_value'])} ({points(c['gain'])}"
                             + (f", late std {100 * c['late_std']:.1f}" if c["late_std"] is not None else "") + ")"
                             for s, c in checks if c is not None)
        best_to_best = ", ".join(f"s{s} {points(c['gain_over_best_before'])}" for s, c in checks
                                 if c is not None and "gain_over_best_before" in c) or "n/a"
        first = next(c for _, c in checks if c is not None)
        flagged = [s for s, c in checks if c is not None and not c["plateaued"]]
        rows.append([v, f"{first['epochs']} (at {first['at_epoch']})", per_seed, best_to_best,
                     "yes" if not flagged else "FLAGGED: " + ", ".join(f"s{s}" for s in flagged)])
    return Table(f"Plateau check per variant and seed: validation mIoU at 75% of the epochs -> best over the last 25% "
                 f"(gain in points; late std: the scatter of the evaluations after 75%, which a flat curve's gain also reflects); "
                 f"a run plateaus when the gain is under {100 * PLATEAU_POINTS:g} point. Beside it, best after 75% minus "
                 "best up to 75%: what the last quarter added to the best checkpoint, free of the bias of a maximum "
                 "against one value",
                 ["variant", "epochs (75% at)", "per seed", "best after - best before", "plateaued"], rows)


def _pilot_text(res: dict) -> str:
    t = res["study"]["resolved_base"]
    d, o, tr = t["data"], t["optim"], t["train"]
    checks = {v: res["runs"][i]["plateau"] for v, i in res["pilot"].items() if res["runs"][i]["plateau"]}
    passed = [v for v, c in checks.items() if c["plateaued"]]
    epoch_s = [res["runs"][i]["train_minutes"] * 60 / res["runs"][i]["epochs"] for i in res["pilot"].values()]
    low, high = round(min(epoch_s)), round(max(epoch_s))
    seconds = f"{low}" if low == high else f"{low}-{high}"
    text = (f"Schedule: {tr['epochs']} epochs, {schedule_text(o)}, validation every {plural(tr['eval_every'], 'epoch')}. "
            f"The first seed of every architecture is the "
            f"pilot that checks it (seed {res['pilot_seed']}, @figure:pilot): {len(passed)} of {len(checks)} checkable "
            f"runs pass the plateau check" + (" (" + ", ".join(f"{v} {points(c['gain'])}" for v, c in checks.items())
                                              + " points gained after 75%)" if checks else "")
            + f"; an epoch, validation included, took {seconds} s on average for them on this machine.")
    if d["source"] == "camvid":  # CamVid frames are 360x480
        scale = d["image_size"][0] / 360
        text += (f" Resolution {d['image_size'][0]}x{d['image_size'][1]} is {scale:.2f} of CamVid's 360x480 per side: "
                 f"a pole 3 pixels wide keeps about {3 * scale:.1f} pixels, and full resolution would cost about "
                 f"{1 / scale ** 2:.1f}x as much per epoch for the {len(res['runs'])} runs.")
    return text


def _code_text(study: dict) -> str:
    """Where the code is: the repository link from the study file, or a plain statement that none was recorded."""
    where = (f"repository {study['repository']}" if study.get("repository") else
             "its repository (no link was recorded; the study file's \"repository\" key sets one)")
    return (f"Code: hf_seg {__version__}; the study file {study['file']} is in {where}, this folder's recipes/ holds "
            f"every run's resolved recipe, and `hf-seg study {study['file']}` reruns it.")


def interim_text(interim: dict) -> str:
    """The warning that opens an interim report: how much has finished and what is left out until it has."""
    def listed(dropped: bool) -> str:
        return "; ".join(f"{c['group']} (waiting for {', '.join(c['waiting'])})" for c in interim["left_out"]
                         if c["dropped"] == dropped)

    dropped, partial = listed(True), listed(False)
    return (f"Interim report: {interim['finished']} of the {interim['planned']} planned runs have finished. Every "
            "number below comes from those runs alone and will change as the others finish; intervals need two seeds "
            "of both variants."
            + (f" Groups not shown yet (each needs its reference and one other variant): {dropped}." if dropped else "")
            + (f" Groups shown without some variants: {partial}." if partial else "")
            + " The study's runner writes the final report when its last run is done.")


def build_document(res: dict) -> list:
    """The report as blocks: ('title'|'h'|'p', text), ('bullets', [text]), Table, Figure."""
    study = res["study"]
    best = res["variants"][res["best"]["variant"]]
    runs_total = sum(r["train_minutes"] for r in res["runs"].values())
    freqs = res["class_frequencies"]
    order = sorted(range(len(freqs)), key=lambda i: freqs[i])
    answers = [plateau_answer(res)] + [answer(res, g) for g in res["groups"]]
    answers += [a for a in (imbalance_answer(res),) if a]
    answers += [efficiency_answer(res), failure_answer(res), cost_answer(res)]
    interim = res.get("interim")
    blocks: list = [
        ("title", f"Study {study['name']}" + (f" (INTERIM: {interim['finished']} of {interim['planned']} runs)"
                                              if interim else "")),
        *([("p", interim_text(interim))] if interim else []),
        ("p", ((study.get("description") or "") + " ").lstrip()
         + f"{plural(len(res['runs']), 'training run')}, {plural(len(res['variants']), 'variant')} in "
           f"{plural(len(res['groups']), 'group')}, {runs_total / 60:.1f} hours of training in all. Best on validation: "
           f"{best['name']} (validation mIoU {pct(best['val_miou'])}, test mIoU {pct(best['test_miou'])}, "
           f"{best['test_images']} test images). Validation chooses; every run's test split was evaluated once."),
        ("h", "Answers"),
        ("bullets", answers),
        ("h", "Data and split"),
        ("p", f"Classes: {', '.join(res['class_names'])}. On the training split the rarest are "
              + ", ".join(f"{res['class_names'][i]} ({pct(freqs[i])}%)" for i in order[:3])
              + f" of the labelled pixels; the most frequent is {res['class_names'][order[-1]]} ({pct(freqs[order[-1]])}%). "
              + split_text(res) + " " + _code_text(study)),
        _split_table(res),
        ("h", "Setup"),
        _setup_table(res),
        _variants_table(res),
        ("h", "Training schedule and plateau check"),
        *([("p", _pilot_text(res)),
           Figure("Pilot: validation mIoU per epoch of one run per architecture; the plateau check compares the best "
                  "value right of the dashed line with the value on it", res["figures"]["pilot"], 0.75, key="pilot")]
          if res.get("pilot") else []),
        _plateau_table(res),
        ("h", "Results"),
        _comparison_table(res),
        _paired_table(res),
        _per_class_table(res),
        Figure("Training curves per group (mean over seeds): train loss and validation mIoU per epoch",
               res["figures"]["curves"]),
        Figure("Test mIoU against inference speed, one colour per network; the ringed variants, joined by the dashed "
               "line, are Pareto-optimal. Variants that share a run are drawn once, under their first name; variants "
               "trained or tested on another split than most are left out; a name that would overprint another is "
               "omitted (@table:comparison has every variant)",
               res["figures"]["pareto"], 0.75),
        ("h", f"Best model: {best['name']}"),
        ("p", f"Per-image test mIoU of {res['failure']['run_id']}: mean {pct(res['failure']['per_image']['mean'])}, "
              f"median {pct(res['failure']['per_image']['median'])}, from {pct(res['failure']['per_image']['min'])} to "
              f"{pct(res['failure']['per_image']['max'])}. @figure:examples shows the "
              f"{sum(e['kind'] == 'best' for e in res['failure']['examples'])} best and "
              f"{sum(e['kind'] == 'worst' for e in res['failure']['examples'])} worst test images"
              + (", each side chosen within its quarter of the ranking (at least as many images as it shows), one "
                 "image per split group before any group repeats (neighbouring frames look alike)."
                 if res["failure"]["examples_one_per_group"] else
                 ", ranked without their groups (the predictions file predates stored groups), so neighbouring "
                 "frames of one scene can repeat.")),
        Figure("Best and worst test images by per-image mIoU: image, ground truth, prediction, errors",
               res["figures"]["examples"], 0.8, key="examples"),
        Figure(f"Failure analysis on test: error rate within {res['failure']['band']['band_px']} px of a boundary vs "
               "interior; object IoU by connected-component area; confusion matrix normalised per true class",
               res["figures"]["failures"]),
        _hardest_table(res),
        Figure("Class frequencies on the training split (log scale)" + (
            "; the rare classes' test IoU per loss" if any(g["role"] == "losses" for g in res["groups"].values()) else ""),
            res["figures"]["classes"], 1.0 if any(g["role"] == "losses" for g in res["groups"].values()) else 0.6),
    ]
    if res.get("sam"):
        blocks += [("h", "SAM zero-shot comparison"), *[("p", p) for p in sorted({sam["protocol"] for sam in res["sam"]})],
                   _sam_table(res)]
    return number_references(blocks)
