"""Publishing a run: the upload folder (best weights, config, processor, card, metrics) and the push to the Hub."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Optional

import httpx2
from huggingface_hub import HfApi, get_token, metadata_update
from huggingface_hub.errors import HFValidationError, HfHubHTTPError, OfflineModeIsEnabled
from huggingface_hub.utils import validate_repo_id

from hf_seg.formatting import pct
from hf_seg.hub.card import COPIED, HubError, card_data, read_run, render_card
from hf_seg.models.processor import save_checkpoint
from hf_seg.runs import MARKER, RunFolder, RunFolderError, empty_own_folder, mark_folder, read_json, write_json

UPLOAD_DIRNAME = "hub_upload"


def check_repo_id(repo_id: str) -> str:
    """A Hub model id 'user/name', or a HubError saying what is wrong with it."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise HubError(f"repo id '{repo_id}' is invalid ({str(e).splitlines()[0]}); use 'user/name'") from e
    if repo_id.count("/") != 1:
        raise HubError(f"repo id '{repo_id}' has no namespace; use 'user/name' or 'organisation/name'")
    return repo_id


def public_recipe(recipe: dict) -> dict:
    """The run's recipe without paths of the user's machine, for publishing; it still loads as a recipe.

    data.root becomes null (training from it asks for the data folder), so does a model.pretrained that is a local
    folder, and output_dir becomes runs/<name>.
    """
    public = json.loads(json.dumps(recipe))
    public["data"]["root"] = None
    pretrained = public["model"].get("pretrained")
    if pretrained and Path(pretrained).expanduser().exists():  # fine-tuned from a local folder: no path is published
        public["model"]["pretrained"] = None
    public["output_dir"] = f"runs/{public.get('name') or 'run'}"
    return public


def build_upload_folder(run_dir: Path, repo_id: str, folder: Optional[Path] = None,
                        license: Optional[str] = None) -> Path:
    """Write what a Hub repo gets from a run: best weights (safetensors) + config, card, metrics, recipe, curves."""
    run_dir = Path(run_dir)
    check_repo_id(repo_id)
    run = read_run(run_dir)
    folder = Path(folder) if folder else run_dir / UPLOAD_DIRNAME
    try:
        empty_own_folder(folder, "upload", "--folder")  # only a folder an earlier push made is ever emptied
    except RunFolderError as e:
        raise HubError(str(e)) from e
    folder.mkdir(parents=True, exist_ok=True)
    mark_folder(folder, "upload")
    model = RunFolder(run_dir).load_best()
    save_checkpoint(model, folder, run.recipe.data.image_size)
    pickled = sorted(p.name for p in folder.glob("*.bin"))
    if pickled or not list(folder.glob("*.safetensors")):
        raise HubError(f"save_pretrained wrote {pickled or 'no safetensors file'} into '{folder}'; "
                       "only safetensors weights are published")
    files = []
    for name in COPIED:
        if name == RunFolder.RECIPE:
            write_json(folder / name, public_recipe(read_json(run_dir / name)))
            files.append(name)
        elif (run_dir / name).is_file():
            shutil.copy2(run_dir / name, folder / name)
            files.append(name)
    render_card(run, repo_id, model, files, license).save(folder / "README.md")
    return folder


def upload_plan(folder: Path) -> list[tuple[str, int]]:
    """(relative path, bytes) of every file upload_folder would send."""
    folder = Path(folder)
    return [(str(p.relative_to(folder)), p.stat().st_size) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MARKER]


def describe_upload(folder: Path, repo_id: str, private: bool) -> str:
    """What a push would do: the repo it creates or reuses and the files with their sizes."""
    plan = upload_plan(folder)
    width = max(len(name) for name, _ in plan)
    lines = [f"would create (or reuse) the {'private' if private else 'public'} model repo '{repo_id}' and upload "
             f"{len(plan)} files ({sum(s for _, s in plan) / 1e6:.2f} MB) from '{folder}':"]
    lines += [f"  {name:<{width}}  {size:>12,d} bytes" for name, size in plan]
    return "\n".join(lines)


def upload(folder: Path, repo_id: str, private: bool = False, commit_message: str = "Upload hf_seg run",
           background: bool = False):
    """create_repo + upload_folder with the user's saved login or HF_TOKEN; returns the commit URL, or with
    background=True a Future of the commit (upload_folder's run_as_future) once the repo exists."""
    check_repo_id(repo_id)
    ready = f"the upload folder is ready at '{folder}'"
    if get_token() is None:
        raise HubError(f"not logged in to the Hugging Face Hub: run `hf auth login` or set HF_TOKEN, then push again ({ready})")
    api = HfApi()
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(folder),
                                 commit_message=commit_message, ignore_patterns=[MARKER], run_as_future=background)
        if background:
            return info
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
             license: Optional[str] = None, background: bool = False):
    """Build the upload folder of a run (run_dir/hub_upload by default) and push it; returns the commit URL (a Future
    of it with background=True: the caller must not rebuild the folder until it is done)."""
    folder = build_upload_folder(run_dir, repo_id, folder, license)
    val = RunFolder(run_dir).read(RunFolder.VAL_METRICS)
    message = f"hf_seg: best checkpoint (epoch {val['epoch']}, val mIoU {pct(val['mean_iou'])}%)"
    return upload(folder, repo_id, private=private, commit_message=message, background=background)


def push_results(run_dir: Path, repo_id: str) -> str:
    """Update only the card's model-index (validation and test scores) of a pushed run: no file is uploaded."""
    check_repo_id(repo_id)
    run = read_run(Path(run_dir))
    if get_token() is None:
        raise HubError("not logged in to the Hugging Face Hub: run `hf auth login` or set HF_TOKEN, then try again")
    index = card_data(run, repo_id, None).to_dict().get("model-index")
    try:
        return metadata_update(repo_id, {"model-index": index}, overwrite=True,
                               commit_message=f"hf_seg: scores of {Path(run_dir).name}")
    except (OfflineModeIsEnabled, HfHubHTTPError, httpx2.HTTPError) as e:
        raise HubError(f"cannot update the card of '{repo_id}' ({type(e).__name__}: {str(e).splitlines()[0]}); check "
                       "the network and that the repo exists (push it first with `hf-seg push`)") from e
