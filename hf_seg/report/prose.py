"""The report's sentences, each assembled from the numbers it cites, so the prose cannot contradict the tables."""

from __future__ import annotations

from typing import Optional

from hf_seg.formatting import pct as _pct
from hf_seg.study.aggregate import rare_mean, split_of
from hf_seg.study.evidence import PLATEAU_POINTS


def pct(x: Optional[float]) -> str:
    """A fraction as a percentage with one decimal; 'n/a' for a missing value."""
    return _pct(x, missing="n/a")


def pm(mean: Optional[float], std: Optional[float]) -> str:
    return pct(mean) if std is None else f"{pct(mean)} ± {pct(std)}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def points(delta: float) -> str:
    """A difference of two fractions in signed percentage points."""
    return f"{100 * delta:+.1f}"


def overrides_text(overrides: dict) -> str:
    return ", ".join(f"{k}={value_text(v)}" for k, v in overrides.items()) or "(the base recipe)"


def value_text(v, none: str = "null") -> str:
    """A recipe value in words; `none` says what a top-level null means where the reader needs more than "null"."""
    if isinstance(v, list):
        return "[" + ", ".join(value_text(x) for x in v) + "]" if v else "[] (none)"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {value_text(x)}" for k, x in v.items()) + "}"
    return none if v is None else str(v)


def schedule_text(optim: dict) -> str:
    """The learning-rate schedule of a resolved recipe in words, with its decay end and floor when it has them."""
    text = f"{optim['schedule']} learning rate from {optim['lr']} after {optim['warmup_steps']} warm-up steps"
    fraction, floor = optim.get("decay_fraction", 1.0), optim.get("min_lr_ratio", 0.0)
    if optim["schedule"] != "constant" and (fraction, floor) != (1.0, 0.0):
        text += (f", decayed over the first {100 * fraction:g}% of the steps to {100 * floor:g}% of its peak"
                 f"{' and held there' if fraction < 1 else ''}")
    return text


def _rows(res: dict, group: str) -> list[dict]:
    return [res["variants"][v] for v in res["groups"][group]["variants"]]


def interval(d: Optional[dict]) -> str:
    """A paired difference as '+1.2 [-0.5, +2.9] points over 3 seeds, inconclusive'; 'n/a' with fewer than 2 seeds."""
    if d is None:
        return "n/a (fewer than 2 shared seeds)"
    return (f"{points(d['mean'])} [{points(d['low'])}, {points(d['high'])}] points over {len(d['seeds'])} seeds, "
            f"{d['verdict']}")


def spread_text(res: dict, group: str, key: str = "test_miou") -> str:
    """The reference's run-to-run spread in words, or '' with one seed."""
    spec = res["groups"][group]
    sp = spec["reference_spread"][key]
    if sp is None:
        return ""
    return (f" Run-to-run spread of {spec['reference']}: std {100 * sp['std']:.1f} points, test mIoU {pct(sp['min'])} to "
            f"{pct(sp['max'])} over {len(sp['seeds'])} seeds.")


def _paired(res: dict, group: str, label=lambda r: r["name"], key: str = "test_miou") -> str:
    spec = res["groups"][group]
    return "; ".join(f"{label(res['variants'][v])} {interval(spec['paired'][v][key])}" for v in spec["variants"][1:])


def _rare_mean(res: dict, row: dict) -> Optional[float]:
    return rare_mean({"per_category_iou": row["test_per_class_iou"]}, res["class_names"], res["rare_classes"])


def _leak_words(res: dict, row: dict) -> str:
    """'leak-free' or 'leaky: test N s from train' for the split a variant's runs used, from the study's audit."""
    sp = split_of(res["splits"], row["run_ids"][0])
    if sp["leak_free"]:
        return "leak-free"
    gap = sp["splits"]["test"].get("min_seconds_to_train")
    return "leaky" + ("" if gap is None else f": test frames {gap:.1f} s from train")


def _leak_control(res: dict, group: str, rows: list[dict]) -> str:
    """Validation as the leak's control, when every variant of the group has the same validation images and they sit
    at least the audit's gap from its training frames: a difference there is the training sets' own, and the test
    difference beyond it is what the near frames add on the test images specifically. '' when validation cannot serve;
    deliberately conservative, so also when the audit has no gap (no timestamps, or no validation sequence trains)."""
    splits = [split_of(res["splits"], r["run_ids"][0]) for r in rows]
    gaps = [sp["splits"]["validation"].get("min_seconds_to_train") for sp in splits]
    if (len({sp["hash"]["validation"] for sp in splits}) != 1
            or any(g is None or g < sp["min_gap_seconds"] for g, sp in zip(gaps, splits))):
        return ""
    return (f" Control: the same {splits[0]['splits']['validation']['images']} validation images lie at least "
            f"{min(gaps):.1f} s from every training frame in each of these splits (leak-free); validation mIoU "
            + ", ".join(f"{r['name']} {pct(r['val_miou'])}" for r in rows)
            + f"; paired differences from {rows[0]['name']}: {_paired(res, group, key='val_miou')}. The test "
              f"difference beyond the validation difference (what the near frames add on the test images "
              f"specifically: the leak, plus any closer match to the test scenes): "
            + _paired(res, group, key="test_minus_val") + ".")


def _ranked_test(rows: list[dict]) -> str:
    return ", ".join(f"{r['name']} {pct(r['test_miou'])}" for r in sorted(rows, key=lambda r: -r["test_miou"]))


def answer(res: dict, group: str) -> str:
    """One answer per group, from its role (what it varies), its numbers and its paired intervals."""
    spec, rows = res["groups"][group], _rows(res, group)
    ref, role = rows[0], spec["role"]
    seeds = max(len(r["run_ids"]) for r in rows)
    head = f"test mIoU, mean of up to {plural(seeds, 'seed')}: {_ranked_test(rows)}. Paired differences from {ref['name']}: "
    if role == "architectures":
        return f"Architecture ({group}): {head}{_paired(res, group)}.{spread_text(res, group)}"
    if role == "encoders":
        heavier = [v for v in spec["variants"][1:] if res["variants"][v]["params_m"] > ref["params_m"]]
        effect = {"better": "helps", "worse": "hurts", "inconclusive": "makes no difference the interval can tell"}
        verdicts = {v: (spec["paired"][v]["test_miou"] or {}).get("verdict") for v in heavier}
        said = "; ".join(f"{res['variants'][v]['encoder']} ({res['variants'][v]['params_m']:.1f} M parameters) "
                         f"{effect.get(x, 'has too few seeds to tell')}" for v, x in verdicts.items())
        word = ("yes" if all(x == "better" for x in verdicts.values()) else
                "no" if any(x == "worse" for x in verdicts.values()) else "not shown")
        always = ("not tested: no encoder here is heavier than the reference" if not heavier else f"{word}: {said}")
        return (f"Encoder ({group}): {head}" + _paired(res, group, lambda r: f"{r['encoder']} ({r['params_m']:.1f} M)")
                + f". Does a heavier backbone always help? {always}.{spread_text(res, group)}")
    if role == "losses":
        rare = ", ".join(f"{r['name']} {pct(_rare_mean(res, r))}" for r in rows)
        return (f"Loss ({group}): {head}{_paired(res, group)}. On the rare classes ({', '.join(res['rare_classes'])}), "
                f"mean test IoU {rare}; paired differences in that mean: {_paired(res, group, key='rare_iou')}."
                + spread_text(res, group))
    if role == "augmentation":
        measured = sorted((v for v in spec["variants"][1:] if spec["paired"][v]["test_miou"]),
                          key=lambda v: -spec["paired"][v]["test_miou"]["mean"])
        better = [v for v in measured if spec["paired"][v]["test_miou"]["verdict"] == "better"]
        most = (f"; helping most: {', '.join(better)}" if better else
                f"; no variant is better than {ref['name']} beyond its interval (largest mean difference: "
                f"{measured[0]})" if measured else "; too few seeds for any interval")
        return f"Augmentation ({group}): {head}{_paired(res, group)}{most}.{spread_text(res, group)}"
    if role == "split":
        same_test = len({r["test_split_hash"] for r in rows}) == 1
        if same_test:
            return (f"Leakage ({group}), on the same {ref['test_images']} test images: "
                    + "; ".join(f"{r['name']} ({_leak_words(res, r)}) test mIoU {pct(r['test_miou'])}" for r in rows)
                    + f". Paired differences from {ref['name']}: {_paired(res, group)}.{spread_text(res, group)}"
                    + _leak_control(res, group, rows))
        parts = [f"{r['name']} ({_leak_words(res, r)}) scores test mIoU {pct(r['test_miou'])} on its own "
                 f"{r['test_images']}-image test set vs {pct(ref['test_miou'])} for {ref['name']} ({_leak_words(res, ref)}, "
                 f"{ref['test_images']} images): {points(r['test_miou'] - ref['test_miou'])} points" for r in rows[1:]]
        return f"Split ({group}): " + "; ".join(parts) + " (different test images, so not a measure of the leak alone)."
    if role == "seeds":
        vals, tests = [r["val_miou"] for r in rows], [r["test_miou"] for r in rows]
        return (f"Seed spread ({group}): the same recipe with {len(rows)} seeds gives validation mIoU from "
                f"{pct(min(vals))} to {pct(max(vals))} ({points(max(vals) - min(vals))} points) and test mIoU from "
                f"{pct(min(tests))} to {pct(max(tests))}; smaller differences elsewhere are not evidence.")
    return f"{group} (varies {', '.join(spec['varied_keys']) or 'nothing'}): {head}{_paired(res, group)}."


def imbalance_answer(res: dict) -> Optional[str]:
    """How class imbalance was handled (class statistics, weighting, losses) and what each remedy did to rare classes."""
    groups = [g for g, spec in res["groups"].items() if spec["role"] == "losses"]
    if not groups:
        return None
    freqs, names = res["class_frequencies"], res["class_names"]
    rare = ", ".join(f"{c} {pct(freqs[names.index(c)])}%" for c in res["rare_classes"])
    g = groups[0]
    spec = res["groups"][g]
    measured = [v for v in spec["variants"][1:] if spec["paired"][v]["rare_iou"]]
    tried = "; ".join(f"{v} ({overrides_text(res['variants'][v]['overrides'])})" for v in spec["variants"][1:])
    text = (f"Class imbalance: the training split's pixel shares were counted per class (rarest: {rare}); against the "
            f"reference {spec['reference']} the study tried {tried} (group {g})")
    if not measured:
        return text + ", with too few seeds for an interval."
    best = max(measured, key=lambda v: spec["paired"][v]["rare_iou"]["mean"])
    return (text + f". The largest gain on the rare classes: {best}, {interval(spec['paired'][best]['rare_iou'])}; "
            f"its effect on mIoU: {interval(spec['paired'][best]['test_miou'])}.")


def plateau_answer(res: dict) -> str:
    """How many runs passed the plateau check, and which failed."""
    checks = {k: r["plateau"] for k, r in res["runs"].items()}
    failed = sorted(k for k, c in checks.items() if c is not None and not c["plateaued"])
    unknown = sorted(k for k, c in checks.items() if c is None)
    text = (f"Training to a plateau: {len(checks) - len(failed) - len(unknown)} of {len(checks)} runs pass (best "
            f"validation mIoU over the last 25% of epochs less than {100 * PLATEAU_POINTS:g} point above the value at "
            "75%)")
    if failed:
        text += "; flagged: " + ", ".join(f"{k} ({points(checks[k]['gain'])})" for k in failed)
        noise = [k for k in failed if checks[k].get("gain_over_best_before", PLATEAU_POINTS) < PLATEAU_POINTS]
        if noise:
            text += (f". Of the flagged, {len(noise)} of {len(failed)} improved on their own best value up to 75% by "
                     f"less than {100 * PLATEAU_POINTS:g} point (" + ", ".join(
                         f"{k} {points(checks[k]['gain_over_best_before'])}" for k in noise)
                     + "): the last quarter added under a point to their best checkpoint, and the flag comes from "
                       "a value at 75% that lay below an earlier evaluation")
    if unknown:
        text += "; not checkable (too few evaluations): " + ", ".join(unknown)
    return text + "."


def efficiency_answer(res: dict) -> str:
    rows = [res["variants"][n] for n in res["pareto_front"]]
    comparable = [res["variants"][n] for n in res["comparable"]]
    fastest, accurate = max(comparable, key=lambda r: r["fps"]), max(comparable, key=lambda r: r["test_miou"])
    front = "; ".join(f"{r['name']} {r['fps']:.1f} img/s at {pct(r['test_miou'])}" for r in rows)
    text = f"Efficiency: the Pareto front of test mIoU vs speed is {front}."
    # shared_speed gives identical models one speed, so equal speed and architecture mean the same network
    same_model = (fastest["arch"], fastest["encoder"], fastest["fps"]) == (accurate["arch"], accurate["encoder"],
                                                                          accurate["fps"])
    if fastest["name"] != accurate["name"] and not same_model:
        text += (f" The most accurate, {accurate['name']}, is {fastest['fps'] / accurate['fps']:.1f}x slower than the fastest, "
                 f"{fastest['name']}, for {points(accurate['test_miou'] - fastest['test_miou'])} points.")
    elif fastest["name"] != accurate["name"]:
        text += (f" The most accurate, {accurate['name']}, runs the same model ({accurate['arch']} / {accurate['encoder']}) "
                 "as the fastest: how it was trained costs nothing at inference.")
    return text + " " + speed_source_text(res.get("speed_source"))


def speed_source_text(source: Optional[dict]) -> str:
    """Where the images/s come from: one machine for every model, or each run's own machine (then said plainly)."""
    if source and source["kind"] == "study":
        return (f"Speeds: every model timed on one machine ({source['devices'][0]}) in {source['rounds']} interleaved "
                "rounds after the last run, from random weights (weights don't change the cost).")
    devices = (source or {}).get("devices", [])
    if len(devices) > 1:
        return (f"Speeds: each run's own benchmark after its training, on {len(devices)} different CPU/GPU models "
                f"({', '.join(devices)}): compare them with care; the study's runner retimes every model on one "
                "machine when its last run is done.")
    return ("Speeds: each run's own benchmark after its training, averaged over the runs of one network (how it was "
            "trained does not change its cost)" + (f", all on {devices[0]}." if devices else "."))


def failure_answer(res: dict) -> str:
    f = res["failure"]
    band, sizes = f["band"], f["size_iou"]
    ratio = band["band_error"] / band["interior_error"] if band["interior_error"] else float("inf")
    hardest = "; ".join(
        f"{h['class']} (IoU {pct(h['iou'])}; most often predicted as "
        + " and ".join(f"{c['class']} ({pct(c['share'])}%)" for c in h["confused_with"]) + ")"
        for h in f["hardest"])
    bucket = ", ".join(f"{b.split()[0]} {pct(v)}" for b, v in zip(sizes["buckets"], sizes["bucket_iou"]))
    return (f"Failure modes of {f['run_id']}: pixels within {band['band_px']} px of a ground-truth boundary are wrong "
            f"{pct(band['band_error'])}% of the time vs {pct(band['interior_error'])}% in the interior ({ratio:.1f}x); they are "
            f"{pct(band['band_share_of_pixels'])}% of the labelled pixels but {pct(band['band_share_of_errors'])}% of the errors. "
            f"Object IoU by size (all classes pooled): {bucket}. Hardest classes: {hardest}.")


def cost_answer(res: dict) -> str:
    """Segmentation against classification: annotation (labels per image), compute (FLOPs beyond the backbone) and
    evaluation (decisions scored), from the study's own numbers."""
    rows = [res["variants"][n] for n in res["comparable"]]
    shares = sorted(rows, key=lambda r: r["encoder_share"])
    lo, hi = shares[0], shares[-1]
    best = res["variants"][res["best"]["variant"]]
    per_image = res["test_labelled_pixels"] / best["test_images"]
    text = (f"Segmentation vs classification cost. Annotation: a mask labels {per_image:,.0f} pixels per test image on "
            f"average, where a classification label is one decision per image. Compute: the encoder, which is what a "
            f"classifier of the same backbone would run, takes {pct(best['encoder_share'])}% of {best['name']}'s FLOPs "
            f"({best['gflops']:.2f} GFLOPs per image), so dense prediction costs {1 / best['encoder_share']:.1f}x the "
            "backbone at this resolution")
    if lo["encoder_share"] != hi["encoder_share"]:
        text += (f" (the encoder share ranges from {pct(lo['encoder_share'])}% for {lo['name']} to "
                 f"{pct(hi['encoder_share'])}% for {hi['name']})")
    return text + (f". Evaluation: the test score counts {res['test_labelled_pixels']:,} labelled pixels in the "
                   f"{len(res['class_names'])}x{len(res['class_names'])} confusion matrix, against "
                   f"{best['test_images']} decisions for a classifier, and it needs per-class IoU, not accuracy, "
                   "because a few large classes dominate the pixel count.")


def split_text(res: dict) -> str:
    """How the base recipe splits the data, in words built from its split settings."""
    sp = res["study"]["resolved_base"]["data"]["split"]
    if sp["mode"] == "official":
        return "The base recipe uses the source's official train/validation/test lists."
    unit = "whole sequences" if sp["block_seconds"] is None else f"blocks of {sp['block_seconds']:g} s of each sequence"
    fractions = "/".join(f"{f:g}" for f in sp["fractions"])
    return (f"The base recipe's group split assigns {unit} to train/validation/test in proportions {fractions} "
            f"(seed {sp['seed']}) and drops the frames within {sp['buffer_seconds'] / 2:g} s of an edge between two "
            "splits, so no group is in two splits; @table:splits audits every split the study used.")
