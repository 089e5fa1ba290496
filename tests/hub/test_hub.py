"""Hub publishing from a real tiny CamVid run: upload folder, card metadata (huggingface_hub's own parser), the card's
code loading the folder back, the HfApi calls a push makes (methods substituted), and clear offline/login errors."""

import json
import os
import re
import runpy
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import httpx2
import numpy as np
import pytest
import torch
from huggingface_hub import HfApi, ModelCard, constants, metadata_load
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.repocard_data import model_index_to_eval_results

from hf_seg.labels import CAMVID
from hf_seg.hub.card import HubError
from hf_seg.hub.upload import build_upload_folder, check_repo_id, push_run, upload
from hf_seg.runs import MARKER, read_json, write_json

from conftest import REPO  # noqa: E402
RECIPE = REPO / "recipes" / "unet_resnet18_cpu.json"
REPO_ID = "hf-seg-tests/tiny-unet"
FAKE_TOKEN = "hf_" + secrets.token_hex(16)  # never valid: proves a token is read but never printed or written
UPLOADED = {"README.md", "config.json", "model.safetensors", "preprocessor_config.json", "recipe.json", "split.json",
            "history.jsonl", "val_metrics.json", "test_metrics.json", "efficiency.json", "curves.png"}


def run(args: list[str], **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "ALBUMENTATIONS_NO_TELEMETRY": "1", "OMP_NUM_THREADS": "1", **env}
    return subprocess.run([sys.executable, *args], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=600)


def tiny_overrides(root: Path) -> list[str]:
    sets = [f"data.root={json.dumps(str(root))}", "data.max_train_samples=8", "data.max_eval_samples=8",
            "data.image_size=[64,96]", "data.num_workers=0", "train.epochs=2", "train.max_steps=4",
            "train.batch_size=4", "train.eval_batch_size=8", "train.mixed_precision=\"no\"", "train.tracker=null",
            "model.encoder_depth=3", "model.options={\"decoder_channels\":[32,16,8]}", "optim.warmup_steps=0",
            "hub.push_to_hub=true", f"hub.hub_model_id=\"{REPO_ID}\""]
    return [a for s in sets for a in ("--set", s)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, camvid_root):
    """A real 4-step run whose recipe asks for a push: offline, the trainer's push must fail after the folder is written.

    Then the test split is evaluated and the model benchmarked, so the run holds every file a card can show.
    """
    run_dir = tmp_path_factory.mktemp("hub") / "run"
    proc = run(["scripts/train.py", str(RECIPE), "--output-dir", str(run_dir), *tiny_overrides(camvid_root)],
               HF_TOKEN=FAKE_TOKEN)
    assert (run_dir / "best").is_dir(), proc.stderr[-3000:]
    evaluation = run(["scripts/eval.py", str(run_dir), "--split", "test"])
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]

    from hf_seg.bench.efficiency import benchmark_model
    from hf_seg.models import load_model

    write_json(run_dir / "efficiency.json", benchmark_model(load_model(run_dir / "best"), (64, 96), batch_sizes=(1,),
                                                             warmup=0, repeats=1, threads=1))
    return run_dir, proc


@pytest.fixture(scope="module")
def upload_dir(trained, tmp_path_factory) -> Path:
    return build_upload_folder(trained[0], REPO_ID, tmp_path_factory.mktemp("up") / "upload")


def test_trainer_push_fails_offline_with_one_line_after_writing_the_folder(trained):
    run_dir, proc = trained
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr[-3000:]
    assert "HF_HUB_OFFLINE" in errors[0] and REPO_ID in errors[0] and str(run_dir / "hub_upload") in errors[0]
    assert {"README.md", "model.safetensors", "config.json"} <= {p.name for p in (run_dir / "hub_upload").iterdir()}
    assert FAKE_TOKEN not in proc.stdout + proc.stderr


def test_upload_folder_holds_safetensors_config_card_and_run_files(trained, upload_dir):
    run_dir = trained[0]
    assert {p.name for p in upload_dir.iterdir()} == UPLOADED | {MARKER}  # the marker is never uploaded (below)
    config = read_json(upload_dir / "config.json")
    assert config["model_type"] == "hf_seg_smp" and list(config["id2label"].values()) == list(CAMVID.names)
    for name in ("split.json", "val_metrics.json", "test_metrics.json", "efficiency.json"):
        assert read_json(upload_dir / name) == read_json(run_dir / name), name
    published, local = read_json(upload_dir / "recipe.json"), read_json(run_dir / "recipe.json")
    assert published["data"]["root"] is None and str(run_dir) not in json.dumps(published)  # no machine paths
    assert {**published, "data": {**published["data"], "root": local["data"]["root"]},
            "output_dir": local["output_dir"]} == local
    for path in upload_dir.iterdir():
        assert FAKE_TOKEN.encode() not in path.read_bytes(), path.name

    from PIL import Image
    from transformers import AutoImageProcessor

    from hf_seg.data.augment import to_pixel_values

    image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)  # already at the model's size
    ours = to_pixel_values(image)
    theirs = AutoImageProcessor.from_pretrained(upload_dir)(images=Image.fromarray(image), return_tensors="pt")
    torch.testing.assert_close(theirs["pixel_values"][0], ours, atol=1e-5, rtol=0)


def test_card_metadata_parses_with_huggingface_hub(trained, upload_dir):
    run_dir = trained[0]
    card = ModelCard.load(upload_dir / "README.md")
    data = card.data
    assert data.pipeline_tag == "image-segmentation" and data.library_name == "segmentation-models-pytorch"
    assert data.license == "other" and data.license_name and data.datasets == ["camvid"]
    assert {"hf_seg", "semantic-segmentation", "unet", "resnet18"} <= set(data.tags) and "camvid" not in data.tags
    meta = metadata_load(upload_dir / "README.md")
    name, results = model_index_to_eval_results(meta["model-index"])
    assert name == "tiny-unet"
    got = {(r.dataset_split, r.metric_type): r.metric_value for r in results}
    assert {r.task_type for r in results} == {"image-segmentation"}
    for split, file in (("validation", "val_metrics.json"), ("test", "test_metrics.json")):
        metrics = read_json(run_dir / file)
        for key in ("mean_iou", "mean_dice", "overall_accuracy", "mean_accuracy"):
            assert got[(split, key)] == pytest.approx(100 * metrics[key], abs=0.006), (split, key)


def test_card_text_shows_run_facts(trained, upload_dir):
    run_dir = trained[0]
    text = (upload_dir / "README.md").read_text()
    assert "{{" not in text and "{%" not in text
    val, test, split = (read_json(run_dir / f) for f in ("val_metrics.json", "test_metrics.json", "split.json"))
    for metrics in (val, test):
        for name, iou in zip(metrics["class_names"], metrics["per_category_iou"]):
            cell = "–" if iou is None else f"{100 * iou:.1f}"
            assert re.search(rf"^\| {name} \| {re.escape(cell)} \|", text, re.M), name
    assert f"mIoU **{100 * test['mean_iou']:.1f}**" in text
    for name, size in split["sizes"].items():
        assert re.search(rf"^\| {name} \| {size} \|", text, re.M), name
    eff = read_json(run_dir / "efficiency.json")
    assert f"{eff['flops_per_image'] / 1e9:.2f} GFLOPs" in text and f"{eff['macs_per_image'] / 1e9:.2f} GMACs" in text
    assert "from scratch" in text and "`hflip`" in text and "![" in text and "(curves.png)" in text
    assert "Brostow" in text and "four video sequences of one city" in text
    assert f'from_pretrained("{REPO_ID}")' in text


@pytest.fixture(scope="module")
def segformer_upload(trained, tmp_path_factory) -> tuple[Path, Path]:
    """A SegFormer run: the real run's files with a SegFormer-b0 checkpoint and recipe swapped in, and its upload folder."""
    from hf_seg.models import build_model
    from hf_seg.recipe import recipe_from_dict, recipe_to_dict

    run_dir = tmp_path_factory.mktemp("segformer") / "run"
    shutil.copytree(trained[0], run_dir, ignore=shutil.ignore_patterns("checkpoints", "best", "last", "hub_upload",
                                                                   "test_metrics.json", "efficiency.json"))
    recipe = recipe_from_dict(read_json(run_dir / "recipe.json"))
    recipe.name = "tiny_segformer"
    recipe.model.arch, recipe.model.encoder, recipe.model.encoder_depth, recipe.model.options = "segformer", "b0", None, {}
    write_json(run_dir / "recipe.json", recipe_to_dict(recipe))
    build_model(recipe.model, CAMVID).save_pretrained(run_dir / "best")
    return run_dir, build_upload_folder(run_dir, "hf-seg-tests/tiny-segformer", run_dir.parent / "upload")


def test_segformer_card_says_transformers(segformer_upload):
    folder = segformer_upload[1]
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "transformers" and "segmentation-models-pytorch" not in card.data.tags
    assert "MiT-b0" in card.text and "1/4 of the input size" in " ".join(card.text.split())
    assert "Not evaluated on the test split yet" in card.text and "## Efficiency" not in card.text
    assert {p.name for p in folder.iterdir()} == UPLOADED - {"test_metrics.json", "efficiency.json"} | {MARKER}
    assert read_json(folder / "config.json")["model_type"] == "segformer"


def test_published_folders_load_back_in_a_fresh_interpreter(trained, upload_dir, segformer_upload, camvid_root,
                                                              tmp_path):
    """In a new interpreter: the SegFormer folder with plain transformers (hf_seg never imported), then the smp card's
    own snippet (`import hf_seg` + Auto classes) on a real CamVid image; outputs are compared with hf_seg's loader here."""
    from hf_seg.models import load_model

    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    torch.save(x, tmp_path / "x.pt")
    plain = (
        "import sys, torch\nfrom transformers import AutoModelForSemanticSegmentation\n"
        f"m = AutoModelForSemanticSegmentation.from_pretrained({str(segformer_upload[1])!r}).eval()\n"
        "assert 'hf_seg' not in sys.modules\n"
        f"with torch.no_grad(): y = m(pixel_values=torch.load({str(tmp_path / 'x.pt')!r})).logits\n"
        f"torch.save({{'logits': y, 'class': type(m).__name__}}, {str(tmp_path / 'segformer.pt')!r})\n")
    snippets = re.findall(r"```python\n(.*?)```", (upload_dir / "README.md").read_text(), re.S)
    snippet = next(s for s in snippets if "AutoModelForSemanticSegmentation" in s)
    plain_smp = next(s for s in snippets if "smp.from_pretrained" in s)
    image = sorted((camvid_root / "test").glob("*.png"))[0]
    snippet = snippet.replace(f'"{REPO_ID}"', repr(str(upload_dir))).replace('"street.png"', repr(str(image)))
    snippet += (f"\ntorch.save({{'pixel_values': inputs['pixel_values'], 'logits': outputs.logits, 'labels': labels, "
                f"'class': type(model).__name__}}, {str(tmp_path / 'smp.pt')!r})\n")
    proc = run(["-c", plain + snippet])
    assert proc.returncode == 0, proc.stderr[-3000:]
    plain_smp = ("import sys, torch\nsys.modules['hf_seg'] = None\n"  # the card's plain-smp snippet, without hf_seg
                 f"pixel_values = torch.load({str(tmp_path / 'x.pt')!r})\n"
                 + plain_smp.replace(f'"{REPO_ID}"', repr(str(upload_dir)))
                 + f"\ntorch.save(logits, {str(tmp_path / 'plain_smp.pt')!r})\n")
    proc = run(["-c", plain_smp])
    assert proc.returncode == 0, proc.stderr[-3000:]

    seg = torch.load(tmp_path / "segformer.pt")
    assert seg["class"] == "SegformerForSemanticSegmentation" and tuple(seg["logits"].shape[-2:]) == (16, 24)
    with torch.no_grad():
        ours = load_model(segformer_upload[0] / "best").eval()(pixel_values=x).logits
    upsampled = torch.nn.functional.interpolate(seg["logits"], size=(64, 96), mode="bilinear", align_corners=False)
    torch.testing.assert_close(upsampled, ours, atol=1e-5, rtol=1e-5)

    smp = torch.load(tmp_path / "smp.pt")
    assert smp["class"] == "SmpForSemanticSegmentation"
    assert tuple(smp["labels"].shape) == (360, 480) and int(smp["labels"].max()) < CAMVID.num_classes
    with torch.no_grad():
        expected = load_model(trained[0] / "best").eval()(pixel_values=smp["pixel_values"]).logits
    # the other process may use another thread count, hence other kernels and summation order: close, not equal
    torch.testing.assert_close(smp["logits"], expected, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        ours = load_model(trained[0] / "best").eval()(pixel_values=x).logits
    torch.testing.assert_close(torch.load(tmp_path / "plain_smp.pt"), ours, atol=1e-5, rtol=1e-5)


def test_push_sends_the_folder_through_hfapi(trained, tmp_path, monkeypatch):
    calls = []

    def create_repo(self, repo_id, **kw):
        calls.append(("create_repo", repo_id, kw))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kw):
        sent = sorted(p.name for p in Path(kw["folder_path"]).iterdir())
        calls.append(("upload_folder", kw.pop("repo_id"), {**kw, "files": sent}))
        return type("CommitInfo", (), {"commit_url": "https://huggingface.co/x/y/commit/abc"})()

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    url = push_run(trained[0], REPO_ID, private=True, folder=tmp_path / "upload")
    assert url == "https://huggingface.co/x/y/commit/abc"
    (c_name, c_repo, c_kw), (u_name, u_repo, u_kw) = calls
    assert (c_name, c_repo, u_name, u_repo) == ("create_repo", REPO_ID, "upload_folder", REPO_ID)
    assert c_kw == {"repo_type": "model", "private": True, "exist_ok": True}
    assert u_kw["folder_path"] == str(tmp_path / "upload") and u_kw["repo_type"] == "model"
    assert set(u_kw["files"]) - {MARKER} == UPLOADED and u_kw["ignore_patterns"] == [MARKER]
    assert "val mIoU" in u_kw["commit_message"]
    assert FAKE_TOKEN not in repr(calls)


def test_push_errors_are_one_line_and_keep_the_folder(upload_dir, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(upload_dir.parent / "no-token-here"))
    with pytest.raises(HubError, match="not logged in.*hf auth login.*HF_TOKEN") as err:
        upload(upload_dir, REPO_ID)
    assert "\n" not in str(err.value) and str(upload_dir) in str(err.value)

    def refused(self, repo_id, **kw):
        request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
        raise HfHubHTTPError("403 Forbidden: you don't have the rights\nmore detail", response=httpx2.Response(403, request=request))

    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    monkeypatch.setattr(HfApi, "create_repo", refused)
    with pytest.raises(HubError, match="HTTP 403.*write access") as err:
        upload(upload_dir, REPO_ID)
    assert "\n" not in str(err.value) and FAKE_TOKEN not in str(err.value)
    assert (upload_dir / "model.safetensors").is_file()


def test_bad_inputs_are_refused_with_the_fix(trained, tmp_path):
    for bad in ("no-namespace", "a/b/c", "user/bad name"):
        with pytest.raises(HubError, match="user/name"):
            check_repo_id(bad)
    with pytest.raises(HubError, match="does not exist"):
        build_upload_folder(tmp_path / "missing", REPO_ID)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "recipe.json").write_text("{}")
    with pytest.raises(HubError, match="'split.json' is missing"):
        build_upload_folder(tmp_path / "half", REPO_ID)
    mine = tmp_path / "mine"  # a user's folder that holds only file types an upload folder holds: still not ours
    mine.mkdir()
    for name in ("notes.md", "results.json", "figure.png", "weights.safetensors"):
        (mine / name).write_text("keep me")
    with pytest.raises(HubError, match="was not made by hf_seg"):
        build_upload_folder(trained[0], REPO_ID, folder=mine)
    assert sorted(p.name for p in mine.iterdir()) == ["figure.png", "notes.md", "results.json", "weights.safetensors"]
    with pytest.raises(HubError, match="was not made by hf_seg"):
        build_upload_folder(trained[0], REPO_ID, folder=trained[0])  # the run folder itself is not an upload folder
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(HubError, match="is a file"):
        build_upload_folder(trained[0], REPO_ID, folder=tmp_path / "a_file")


def cli(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """Run scripts/push_to_hub.py in this process (argparse, printing and exit status as on the command line)."""
    monkeypatch.setattr(sys, "argv", ["push_to_hub.py", *args])
    code = 0
    try:
        runpy.run_path(str(REPO / "scripts" / "push_to_hub.py"), run_name="__main__")
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_dry_run_lists_files_and_bad_input_exits_2(trained, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)  # a dry run needs no login and sends nothing
    monkeypatch.setattr(HfApi, "create_repo", lambda *a, **k: pytest.fail("a dry run must not create a repo"))
    monkeypatch.setattr(HfApi, "upload_folder", lambda *a, **k: pytest.fail("a dry run must not upload"))
    folder = tmp_path / "dry"
    code, out, err = cli(capsys, monkeypatch, str(trained[0]), "--repo-id", REPO_ID, "--dry-run", "--folder", str(folder))
    assert code == 0, err
    assert "dry run: nothing was sent" in out and f"public model repo '{REPO_ID}'" in out
    for name in UPLOADED:
        size = (folder / name).stat().st_size
        assert re.search(rf"^  {re.escape(name)} +{size:,d} bytes$", out, re.M), name
    code, out, err = cli(capsys, monkeypatch, str(tmp_path / "nope"), "--repo-id", REPO_ID, "--dry-run")
    assert code == 2 and err.startswith("error: run folder") and len(err.strip().splitlines()) == 1
    code, out, err = cli(capsys, monkeypatch, str(trained[0]), "--repo-id", "no-namespace", "--dry-run")
    assert code == 2 and "user/name" in err and len(err.strip().splitlines()) == 1


def test_results_only_updates_just_the_model_index(trained, monkeypatch):
    """After a test evaluation, `hf-seg push --results-only` sends the card's model-index and nothing else."""
    import importlib

    from helpers.cli import cli

    upload_module = importlib.import_module("hf_seg.hub.upload")  # (hf_seg.hub.upload the attribute is a function)

    sent = []
    monkeypatch.setattr(upload_module, "metadata_update",
                        lambda repo_id, metadata, **kw: sent.append((repo_id, metadata, kw)) or "https://hf.co/x/c/1")
    monkeypatch.setattr(HfApi, "upload_folder", lambda *a, **k: pytest.fail("no file may be uploaded"))
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    code, err = cli("push", str(trained[0]), "--repo-id", REPO_ID, "--results-only")
    assert code == 0, err
    ((repo_id, metadata, kw),) = sent
    assert repo_id == REPO_ID and list(metadata) == ["model-index"] and kw["overwrite"] is True
    name, results = model_index_to_eval_results(metadata["model-index"])
    test = read_json(trained[0] / "test_metrics.json")
    assert {(r.dataset_split, r.metric_type): r.metric_value for r in results}[("test", "mean_iou")] == pytest.approx(
        100 * test["mean_iou"], abs=0.006)


def test_cards_never_hold_local_paths_and_name_an_other_licence(trained, tmp_path):
    """A fine-tune from a local folder and a local dataset: the card describes them in words; license other has a name."""
    import dataclasses

    from hf_seg.hub.card import card_data, read_run

    run = read_run(trained[0])
    local = str(tmp_path)  # any existing folder stands for a local checkpoint
    recipe = dataclasses.replace(run.recipe, model=dataclasses.replace(run.recipe.model, pretrained=local),
                                 data=dataclasses.replace(run.recipe.data, source="hub",
                                                          source_options={"dataset_id": local}))
    from hf_seg.hub.datasets import dataset_card

    local_run = dataclasses.replace(run, recipe=recipe, dataset=dataset_card(recipe))
    data = card_data(local_run, REPO_ID, "other")
    assert data.license == "other" and data.license_name
    assert data.datasets is None and data.base_model is None and "hub" not in data.tags
    assert local not in json.dumps(data.to_dict()) and local not in local_run.dataset.about
