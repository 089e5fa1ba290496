"""hf_seg.report: the study report (report.md and report.pdf, at most 10 pages) from a study's run folders alone.

`make_report` aggregates the run folders (hf_seg.study.aggregate: no dataset, no model) into analysis/results.json,
then renders the same blocks as Markdown and as PDF.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hf_seg.errors import HfSegError
from hf_seg.report.document import build_document
from hf_seg.report.markdown import to_markdown
from hf_seg.report.pdf import to_pdf
from hf_seg.runs import read_json
from hf_seg.study.aggregate import ANALYSIS_DIR, RESULTS_FORMAT, aggregate

MAX_PAGES = 10


class ReportError(HfSegError):
    """The report cannot be written as asked (e.g. it would exceed the page limit); the message says what to change."""


@dataclass
class ReportFiles:
    md: Path
    pdf: Path
    pages: int
    tables: list[str]
    figures: list[str]


def read_results(study_dir: Path) -> dict:
    """analysis/results.json as it is, refused in one line when an hf_seg of another results format wrote it (its
    keys would not be the ones the report reads)."""
    path = study_dir / ANALYSIS_DIR / "results.json"
    res = read_json(path)
    found = res.get("format", 1)
    if found != RESULTS_FORMAT:
        raise ReportError(f"'{path}' has results format {found}, this hf_seg renders format {RESULTS_FORMAT}; "
                          f"run `hf-seg report {study_dir}` without --no-aggregate to aggregate its runs again, or "
                          "render it with the hf_seg version that wrote it")
    return res


def make_report(study_dir: Path, aggregate_first: bool = True, interim: bool = False) -> ReportFiles:
    """Aggregate the study (unless asked not to), then write report.md and report.pdf into the study folder;
    `interim`: aggregate the runs finished so far and say so on the title (without aggregating, results.json already
    records whether it was interim). A report over the page limit replaces neither file."""
    study_dir = Path(study_dir)
    res = aggregate(study_dir, interim=interim) if aggregate_first else read_results(study_dir)
    blocks = build_document(res)
    md, tables, figures = to_markdown(blocks)
    md_path, pdf = study_dir / "report.md", study_dir / "report.pdf"
    tmp_md, tmp_pdf = (p.with_name(f".{p.name}.tmp{os.getpid()}") for p in (md_path, pdf))
    try:
        pages = to_pdf(blocks, study_dir, tmp_pdf)
        if pages > MAX_PAGES:
            raise ReportError(f"the report of '{study_dir}' would have {pages} pages, more than {MAX_PAGES}; study "
                              "fewer variants or groups")
        tmp_md.write_text(md)
        os.replace(tmp_pdf, pdf)
        os.replace(tmp_md, md_path)
    finally:
        tmp_pdf.unlink(missing_ok=True)
        tmp_md.unlink(missing_ok=True)
    return ReportFiles(md_path, pdf, pages, tables, figures)
