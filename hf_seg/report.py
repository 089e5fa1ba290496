"""The study report: report.md and report.pdf (at most 10 pages) written from analysis/results.json alone.

Every sentence is assembled from the numbers it cites, so the prose cannot contradict the tables. The document is a
list of blocks (headings, paragraphs, bullets, tables, figures) rendered twice: as Markdown and, with reportlab, as PDF.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from xml.sax.saxutils import escape

from hf_seg.aggregate import ANALYSIS_DIR, aggregate, split_of
from hf_seg.runfolder import read_json

MAX_PAGES = 10


class ReportError(ValueError):
    """The report cannot be written as asked (e.g. it would exceed the page limit); the message says what to change."""


@dataclass
class Table:
    caption: str
    header: list[str]
    rows: list[list[str]]


@dataclass
class Figure:
    caption: str
    path: str  # relative to the study folder
    width: float = 1.0  # fraction of the text width


@dataclass
class ReportFiles:
    md: Path
    pdf: Path
    pages: int
    tables: list[str]
    figures: list[str]


def pct(x: Optional[float]) -> str:
    """A fraction as a percentage with one decimal; 'n/a' for a missing value."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def pm(mean: Optional[float], std: Optional[float]) -> str:
    return pct(mean) if std is None else f"{pct(mean)} ± {pct(std)}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def points(delta: float) -> str:
    """A difference of two fractions in signed percentage points."""
    return f"{100 * delta:+.1f}"


def _overrides_text(overrides: dict) -> str:
    return ", ".join(f"{k}={_value(v)}" for k, v in overrides.items()) or "(the base recipe)"


def _value(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]" if v else "[] (none)"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_value(x)}" for k, x in v.items()) + "}"
    return "null" if v is None else str(v)


def _rows(res: dict, group: str) -> list[dict]:
    return [res["variants"][v] for v in res["groups"][group]["variants"]]


def _by_val(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: -r["val_miou"])


def _seed_spread(res: dict, key: str = "val_miou") -> Optional[float]:
    """Largest range of `key` over identical recipes that differ only in seed (a seeds group, or seeds > 1)."""
    spreads = []
    for spec in res["groups"].values():
        if spec["role"] == "seeds":
            vals = [res["variants"][v][key] for v in spec["variants"]]
            spreads.append(max(vals) - min(vals))
    for run_ids in {tuple(r["run_ids"]) for r in res["variants"].values() if len(r["run_ids"]) > 1}:
        vals = [res["runs"][i][key] for i in run_ids]
        spreads.append(max(vals) - min(vals))
    return max(spreads) if spreads else None


def _delta_note(delta: float, noise: Optional[float]) -> str:
    if noise is None:
        return ""
    return " (within the seed spread)" if abs(delta) <= noise else ""


def _deltas(rows: list[dict], noise: Optional[float], label) -> str:
    ref = rows[0]
    parts = [f"{label(r)} {points(r['val_miou'] - ref['val_miou'])}{_delta_note(r['val_miou'] - ref['val_miou'], noise)}"
             for r in rows[1:]]
    return f"relative to {label(ref)} (validation mIoU {pct(ref['val_miou'])}): " + "; ".join(parts) + " points"


def _rare_mean(res: dict, row: dict) -> Optional[float]:
    values = [row["test_per_class_iou"][res["class_names"].index(c)] for c in res["rare_classes"]]
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _leak_words(res: dict, row: dict) -> str:
    """'leak-free' or 'leaky: test N s from train' for the split a variant's runs used, from the study's audit."""
    sp = split_of(res["splits"], row["run_ids"][0])
    if sp["leak_free"]:
        return "leak-free"
    gap = sp["splits"]["test"].get("min_seconds_to_train")
    return "leaky" + ("" if gap is None else f": test frames {gap:.1f} s from train")


def answer(res: dict, group: str, noise: Optional[float]) -> str:
    """One sentence per group, from its role (what it varies) and its numbers."""
    spec, rows = res["groups"][group], _rows(res, group)
    ranked = _by_val(rows)
    best = ranked[0]
    role = spec["role"]
    if role == "architectures":
        rest = ", ".join(f"{r['name']} {pct(r['val_miou'])}" for r in ranked[1:])
        return (f"Best architecture ({group}): {best['name']} with validation mIoU {pct(best['val_miou'])} "
                f"(test {pct(best['test_miou'])}, {best['params_m']:.1f} M parameters); then {rest}. Best minus worst: "
                f"{points(best['val_miou'] - ranked[-1]['val_miou'])} points{_delta_note(best['val_miou'] - ranked[-1]['val_miou'], noise)}.")
    if role == "encoders":
        return (f"Encoder impact ({group}): " + _deltas(rows, noise, lambda r: f"{r['encoder']} ({r['params_m']:.1f} M)")
                + f"; the best encoder is {best['encoder']} (test mIoU {pct(best['test_miou'])}).")
    if role == "losses":
        rare = ", ".join(f"{r['name']} {pct(_rare_mean(res, r))}" for r in rows)
        return (f"Loss impact ({group}): " + _deltas(rows, noise, lambda r: r["name"])
                + f". Mean test IoU of the rare classes ({', '.join(res['rare_classes'])}): {rare}.")
    if role == "augmentation":
        return (f"Augmentation impact ({group}): " + _deltas(rows, noise, lambda r: r["name"])
                + f"; the best is {best['name']} (test mIoU {pct(best['test_miou'])}).")
    if role == "split":
        ref, test_noise = rows[0], _seed_spread(res, "test_miou")
        parts = [f"{r['name']} ({_leak_words(res, r)}) scores test mIoU {pct(r['test_miou'])} on its own "
                 f"{r['test_images']}-image test set vs {pct(ref['test_miou'])} for {ref['name']} ({_leak_words(res, ref)}, "
                 f"{ref['test_images']} images): "
                 f"{points(r['test_miou'] - ref['test_miou'])} points{_delta_note(r['test_miou'] - ref['test_miou'], test_noise)}"
                 for r in rows[1:]]
        return f"Split ({group}): " + "; ".join(parts) + "."
    if role == "seeds":
        vals = [r["val_miou"] for r in rows]
        tests = [r["test_miou"] for r in rows]
        return (f"Seed spread ({group}): the same recipe with {len(rows)} seeds gives validation mIoU from "
                f"{pct(min(vals))} to {pct(max(vals))} ({points(max(vals) - min(vals))} points) and test mIoU from "
                f"{pct(min(tests))} to {pct(max(tests))}; smaller differences elsewhere are not evidence.")
    rest = ", ".join(f"{r['name']} {pct(r['val_miou'])}" for r in ranked)
    return f"{group} (varies {', '.join(spec['varied_keys']) or 'nothing'}): by validation mIoU {rest}."


def efficiency_answer(res: dict) -> str:
    rows = [res["variants"][n] for n in res["pareto_front"]]
    comparable = [r for r in res["variants"].values() if r["test_split_hash"] == res["test_split_hash"]]
    fastest, accurate = max(comparable, key=lambda r: r["fps"]), max(comparable, key=lambda r: r["test_miou"])
    front = "; ".join(f"{r['name']} {r['fps']:.1f} img/s at {pct(r['test_miou'])}" for r in rows)
    text = f"Efficiency: the Pareto front of test mIoU vs speed is {front}."
    if fastest["name"] != accurate["name"]:
        text += (f" The most accurate, {accurate['name']}, is {fastest['fps'] / accurate['fps']:.1f}x slower than the fastest, "
                 f"{fastest['name']}, for {points(accurate['test_miou'] - fastest['test_miou'])} points.")
    return text


def failure_answer(res: dict) -> str:
    f = res["failure"]
    band, sizes = f["band"], f["size_iou"]
    ratio = band["band_error"] / band["interior_error"] if band["interior_error"] else float("inf")
    hardest = "; ".join(
        f"{h['class']} (IoU {pct(h['iou'])}; predicted mostly as "
        + " and ".join(f"{c['class']} ({pct(c['share'])}%)" for c in h["confused_with"]) + ")"
        for h in f["hardest"])
    bucket = ", ".join(f"{b.split()[0]} {pct(v)}" for b, v in zip(sizes["buckets"], sizes["bucket_iou"]))
    return (f"Failure modes of {f['run_id']}: pixels within {band['band_px']} px of a ground-truth boundary are wrong "
            f"{pct(band['band_error'])}% of the time vs {pct(band['interior_error'])}% in the interior ({ratio:.1f}x); they are "
            f"{pct(band['band_share_of_pixels'])}% of the labelled pixels but {pct(band['band_share_of_errors'])}% of the errors. "
            f"Object IoU by size (all classes pooled): {bucket}. Hardest classes: {hardest}.")


def cost_answer(res: dict) -> str:
    rows = [r for r in res["variants"].values() if r["test_split_hash"] == res["test_split_hash"]]
    shares = sorted(rows, key=lambda r: r["encoder_share"])
    lo, hi = shares[0], shares[-1]
    best = res["variants"][res["best"]["variant"]]
    text = (f"Segmentation vs classification cost: the encoder, which is what a classifier of the same backbone would "
            f"run, takes {pct(best['encoder_share'])}% of {best['name']}'s FLOPs ({best['gflops']:.2f} GFLOPs per image), so "
            f"dense prediction costs {1 / best['encoder_share']:.1f}x the backbone at this resolution")
    if lo["encoder_share"] != hi["encoder_share"]:
        text += (f"; across variants the encoder share ranges from {pct(lo['encoder_share'])}% ({lo['name']}) to "
                 f"{pct(hi['encoder_share'])}% ({hi['name']})")
    return text + "."


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
                  "test-train gap s", "leak-free", "runs"], rows)


def split_text(res: dict) -> str:
    """How the base recipe splits the data, in words built from its split settings."""
    sp = res["study"]["resolved_base"]["data"]["split"]
    if sp["mode"] == "official":
        return "The base recipe uses the source's official train/validation/test lists."
    unit = "whole sequences" if sp["block_seconds"] is None else f"blocks of {sp['block_seconds']:g} s of each sequence"
    fractions = "/".join(f"{f:g}" for f in sp["fractions"])
    return (f"The base recipe's group split assigns {unit} to train/validation/test in proportions {fractions} "
            f"(seed {sp['seed']}) and drops the frames within {sp['buffer_seconds'] / 2:g} s of an edge between two "
            "splits, so no group is in two splits; Table 1 audits every split the study used.")


def _setup_table(res: dict) -> Table:
    r = res["study"]["resolved_base"]
    d, t, o, l_ = r["data"], r["train"], r["optim"], r["loss"]
    items = [
        ("data source", f"{d['source']} ({len(res['class_names'])} classes, ignore index 255)"),
        ("image size (H x W)", f"{d['image_size'][0]} x {d['image_size'][1]}"),
        ("augmentation", _value(d["augment"])),
        ("training images cap", _value(d["max_train_samples"])),
        ("model", f"{r['model']['arch']} / {r['model']['encoder']}, pretrained: {_value(r['model']['pretrained'])}"),
        ("loss", f"{l_['name']}, class weights: {_value(d['class_weights'])}"),
        ("optimizer", f"AdamW lr {o['lr']}, weight decay {o['weight_decay']}, {o['schedule']} schedule, "
                      f"warm-up {o['warmup_steps']} steps, grad clip {_value(o['max_grad_norm'])}"),
        ("training", f"{t['epochs']} epochs (max steps {_value(t['max_steps'])}), batch {t['batch_size']}, "
                     f"precision {t['mixed_precision']}, seeds {', '.join(map(str, res['study']['seeds']))}"),
        ("model selection", "best validation mIoU checkpoint; test evaluated once per run"),
    ]
    return Table(f"Setup shared by every run: the base recipe {res['study']['base_recipe']} with the study's profile "
                 "(each variant changes only what Table 3 lists)",
                 ["setting", "value"], [[k, v] for k, v in items])


def _variants_table(res: dict) -> Table:
    rows = []
    for group, spec in res["groups"].items():
        for v in spec["variants"]:
            ids = res["variants"][v]["run_ids"]
            runs = ids[0] if len(ids) == 1 else f"{ids[0].rsplit('-s', 1)[0]} ({len(ids)} seeds)"
            rows.append([group, v, _overrides_text(res["variants"][v]["overrides"]), runs])
    return Table("Variants: recipe overrides per group (identical setups share one run)",
                 ["group", "variant", "overrides", "run"], rows)


def _comparison_table(res: dict) -> Table:
    rows = []
    for group, spec in res["groups"].items():
        for v in spec["variants"]:
            r = res["variants"][v]
            rows.append([group, v + (" *" if v == spec["best_by_val"] else ""), pm(r["val_miou"], r["val_miou_std"]),
                         pm(r["test_miou"], r["test_miou_std"]), pct(r["test_mdice"]), pct(r["test_pixel_acc"]),
                         f"{r['params_m']:.1f}", f"{r['gflops']:.2f}", f"{r['fps']:.1f}", f"{r['train_minutes']:.1f}"])
    seeds = len(res["study"]["seeds"])
    spread = f"mean ± std over {seeds} seeds" if seeds > 1 else "one seed per variant"
    return Table(f"Comparison (percent, {spread}; * = best of its group on validation; "
                 f"GFLOPs per image, img/s at batch 1, training minutes incl. per-epoch validation)",
                 ["group", "variant", "val mIoU", "test mIoU", "test mDice", "pixel acc", "params M", "GFLOPs", "img/s",
                  "train min"], rows)


def _per_class_table(res: dict) -> Table:
    names = res["class_names"]
    rows = [[v, *[pct(x) for x in r["test_per_class_iou"]], pct(r["test_miou"])] for v, r in res["variants"].items()]
    return Table("Test IoU per class (percent)", ["variant", *names, "mIoU"], rows)


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


def build_document(res: dict) -> list:
    """The report as blocks: ('title'|'h'|'p', text), ('bullets', [text]), Table, Figure."""
    study = res["study"]
    noise = _seed_spread(res)
    best = res["variants"][res["best"]["variant"]]
    runs_total = sum(r["train_minutes"] for r in res["runs"].values())
    freqs = res["class_frequencies"]
    order = sorted(range(len(freqs)), key=lambda i: freqs[i])
    answers = [answer(res, g, noise) for g in res["groups"]]
    answers += [efficiency_answer(res), failure_answer(res), cost_answer(res)]
    blocks: list = [
        ("title", f"Study {study['name']}"),
        ("p", ((study.get("description") or "") + " ").lstrip()
         + f"{plural(len(res['runs']), 'training run')}, {plural(len(res['variants']), 'variant')} in "
           f"{plural(len(res['groups']), 'group')}, {runs_total:.0f} minutes of training in all. Best on validation: {best['name']} "
           f"(validation mIoU {pct(best['val_miou'])}, test mIoU {pct(best['test_miou'])}, {best['test_images']} test images)."),
        ("h", "Answers"),
        ("bullets", answers),
        ("h", "Data and split"),
        ("p", f"Classes: {', '.join(res['class_names'])}. On the training split the rarest are "
              + ", ".join(f"{res['class_names'][i]} ({pct(freqs[i])}%)" for i in order[:3])
              + f" of the labelled pixels; the most frequent is {res['class_names'][order[-1]]} ({pct(freqs[order[-1]])}%). "
              + split_text(res)),
        _split_table(res),
        ("h", "Setup"),
        _setup_table(res),
        _variants_table(res),
        ("h", "Results"),
        _comparison_table(res),
        _per_class_table(res),
        Figure("Training curves per group (mean over seeds): train loss and validation mIoU per epoch",
               res["figures"]["curves"]),
        Figure("Test mIoU against inference speed; the dashed line joins the Pareto-optimal variants (variants that "
               "share a run are drawn once, under their first name; variants scored on another test split are left out; a name "
               "that would overprint another is omitted, Table 4 has every variant)",
               res["figures"]["pareto"], 0.75),
        ("h", f"Best model: {best['name']}"),
        ("p", f"Per-image test mIoU of {res['failure']['run_id']}: mean {pct(res['failure']['per_image']['mean'])}, "
              f"median {pct(res['failure']['per_image']['median'])}, from {pct(res['failure']['per_image']['min'])} to "
              f"{pct(res['failure']['per_image']['max'])}. The figure shows the "
              f"{sum(e['kind'] == 'best' for e in res['failure']['examples'])} best and "
              f"{sum(e['kind'] == 'worst' for e in res['failure']['examples'])} worst test images."),
        Figure("Best and worst test images by per-image mIoU: image, ground truth, prediction, errors",
               res["figures"]["examples"], 0.8),
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
    return blocks


def to_markdown(blocks: list) -> tuple[str, list[str], list[str]]:
    """Markdown text, table captions and figure captions (numbered in order)."""
    lines, tables, figures = [], [], []
    for b in blocks:
        if isinstance(b, Table):
            tables.append(b.caption)
            lines += [f"**Table {len(tables)}: {b.caption}**", "", "| " + " | ".join(b.header) + " |",
                      "|" + "|".join("---" for _ in b.header) + "|"]
            lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in b.rows]
        elif isinstance(b, Figure):
            figures.append(b.caption)
            lines += [f"![Figure {len(figures)}]({b.path})", "", f"*Figure {len(figures)}: {b.caption}*"]
        elif b[0] == "title":
            lines.append(f"# {b[1]}")
        elif b[0] == "h":
            lines.append(f"## {b[1]}")
        elif b[0] == "p":
            lines.append(b[1])
        elif b[0] == "bullets":
            lines += [f"- {item}" for item in b[1]]
        lines.append("")
    return "\n".join(lines), tables, figures


def _col_widths(table: Table, total: float) -> list[float]:
    """Widths proportional to each column's longest cell (square-root damped), summing to `total`."""
    lengths = [max(len(table.header[i]), *(len(r[i]) for r in table.rows)) if table.rows else len(table.header[i])
               for i in range(len(table.header))]
    weights = [max(3.0, n) ** 0.6 for n in lengths]
    return [total * w / sum(weights) for w in weights]


def to_pdf(blocks: list, study_dir: Path, path: Path) -> int:
    """Render the blocks to an A4 PDF with reportlab; returns the number of pages."""
    from PIL import Image as PILImage
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer
    from reportlab.platypus import Table as RLTable
    from reportlab.platypus import TableStyle

    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["BodyText"], fontSize=8.5, leading=10.5, spaceAfter=3)
    bullet = ParagraphStyle("bullet", parent=body, leftIndent=10, bulletIndent=2)
    cell = ParagraphStyle("cell", parent=body, fontSize=6.5, leading=7.6, spaceAfter=0)
    caption = ParagraphStyle("caption", parent=body, fontSize=7.5, leading=9, textColor=colors.HexColor("#333333"))
    h1 = ParagraphStyle("h1", parent=styles["Heading1"], fontSize=15, spaceAfter=4)
    h2 = ParagraphStyle("h2", parent=styles["Heading2"], fontSize=11, spaceBefore=6, spaceAfter=3)
    pages = []

    def footer(canvas, doc) -> None:
        pages.append(doc.page)
        canvas.setFont("Helvetica", 7)
        canvas.drawRightString(A4[0] - 1.4 * cm, 0.8 * cm, f"page {doc.page}")

    doc = SimpleDocTemplate(str(path), pagesize=A4, leftMargin=1.4 * cm, rightMargin=1.4 * cm, topMargin=1.2 * cm,
                            bottomMargin=1.3 * cm, title="Study report")
    width = doc.width
    flow, n_tables, n_figures = [], 0, 0
    for b in blocks:
        if isinstance(b, Table):
            n_tables += 1
            data = [[Paragraph(f"<b>{escape(h)}</b>", cell) for h in b.header]]
            data += [[Paragraph(escape(c), cell) for c in row] for row in b.rows]
            t = RLTable(data, colWidths=_col_widths(b, width), repeatRows=1)
            t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                                   ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
                                   ("VALIGN", (0, 0), (-1, -1), "TOP"), ("TOPPADDING", (0, 0), (-1, -1), 1),
                                   ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))
            head = Paragraph(f"<b>Table {n_tables}:</b> {escape(b.caption)}", caption)
            flow += [KeepTogether([head, t]) if len(b.rows) < 25 else head, *([] if len(b.rows) < 25 else [t]),
                     Spacer(1, 5)]
        elif isinstance(b, Figure):
            n_figures += 1
            with PILImage.open(study_dir / b.path) as im:
                w, h = im.size
            img_w = width * b.width
            img_h = min(img_w * h / w, doc.height * 0.8)
            img_w = img_h * w / h
            flow += [KeepTogether([Image(str(study_dir / b.path), width=img_w, height=img_h),
                                   Paragraph(f"<b>Figure {n_figures}:</b> {escape(b.caption)}", caption)]), Spacer(1, 5)]
        elif b[0] == "title":
            flow.append(Paragraph(escape(b[1]), h1))
        elif b[0] == "h":
            flow.append(Paragraph(escape(b[1]), h2))
        elif b[0] == "p":
            flow.append(Paragraph(escape(b[1]), body))
        elif b[0] == "bullets":
            flow += [Paragraph(escape(item), bullet, bulletText="•") for item in b[1]]
    doc.build(flow, onFirstPage=footer, onLaterPages=footer)
    return max(pages)


def make_report(study_dir: Path, aggregate_first: bool = True) -> ReportFiles:
    """Aggregate the study (unless asked not to), then write report.md and report.pdf into the study folder."""
    study_dir = Path(study_dir)
    res = aggregate(study_dir) if aggregate_first else read_json(study_dir / ANALYSIS_DIR / "results.json")
    blocks = build_document(res)
    md, tables, figures = to_markdown(blocks)
    (study_dir / "report.md").write_text(md)
    pdf = study_dir / "report.pdf"
    pages = to_pdf(blocks, study_dir, pdf)
    if pages > MAX_PAGES:
        raise ReportError(f"'{pdf}' has {pages} pages, more than {MAX_PAGES}; study fewer variants or groups")
    return ReportFiles(study_dir / "report.md", pdf, pages, tables, figures)
