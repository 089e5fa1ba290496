"""The one training loop: a recipe in, a run folder out (best/last checkpoints, history, curves, metrics)."""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from hf_seg.data import audit_split, build_datasets, class_weights, make_transform, save_split, set_transform
from hf_seg.data.augment import SharedEpoch
from hf_seg.data.class_stats import frequencies
from hf_seg.data.stream import StreamedTrain, is_streamed, open_stream
from hf_seg.engine.checks import check_model_input, check_settings
from hf_seg.engine.evaluation import evaluate, format_summary
from hf_seg.engine.schedule import build_scheduler
from hf_seg.engine.runtime import channels_last, data_workers, make_accelerator as runtime_accelerator
from hf_seg.engine.tracking import epoch_scalars, log_val_images, tracker_names
from hf_seg.errors import HfSegError, one_line
from hf_seg.hub import push_run
from hf_seg.losses import build_loss
from hf_seg.models import build_model
from hf_seg.models.processor import save_checkpoint
from hf_seg.recipe import RESUMABLE_KEYS, Recipe, RecipeError, flatten, recipe_changes, recipe_to_dict
from hf_seg.runs import RunFolder, RunFolderError, save_dir_atomically, write_json
from hf_seg.viz import plot_curves

class TrainingDivergedError(HfSegError):
    """The loss or the weights became NaN/inf; the run stops and keeps its last good checkpoints."""


@dataclass
class TrainerState:
    """What a resumed run needs besides the Accelerate state: where it stopped and the early-stopping bookkeeping."""

    epoch: int = 0  # epochs completed
    global_step: int = 0
    best_miou: float = -1.0
    best_epoch: int = 0
    evals_since_best: int = 0


def make_accelerator(recipe: Recipe, out: Path) -> Accelerator:
    accelerator = runtime_accelerator(
        recipe.train.mixed_precision,
        gradient_accumulation_steps=recipe.train.grad_accum,
        dataloader_config=DataLoaderConfiguration(split_batches=True),
        log_with=tracker_names(recipe.train.tracker) or None,
        # smp encoders built shallower than their full depth keep unused stages; DDP must not wait for their gradients
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        project_dir=str(out),
    )
    if recipe.train.batch_size % accelerator.num_processes:
        raise RecipeError(f"recipe key 'train.batch_size' = {recipe.train.batch_size} must be divisible by the "
                          f"{accelerator.num_processes} processes (it is the global batch, split across them)")
    return accelerator


def _one_thread_worker(worker_id: int) -> None:
    """Data workers use one torch thread each and the lowest CPU priority: compute threads belong to the training
    process, and workers only take the cycles it leaves idle."""
    torch.set_num_threads(1)
    if not torch.cuda.is_available():  # on a CPU the model's threads come first
        os.nice(19)


@dataclass
class Loaders:
    """The train and validation loaders, with what makes an epoch's batches a function of (seed, epoch) alone."""

    train: torch.utils.data.DataLoader
    validation: torch.utils.data.DataLoader
    epoch: SharedEpoch  # read by the train transform (in persistent workers too) for the augmentation seeds
    shuffle: torch.Generator  # the train sampler's own generator: the order never depends on other RNG draws
    seed: int

    def begin_epoch(self, epoch: int) -> None:
        """Set the augmentation epoch and the shuffle of `epoch`; call it before iterating the train loader."""
        self.epoch.value = epoch
        self.shuffle.manual_seed(self.seed + epoch)


def make_loaders(recipe: Recipe, dsd, class_info, device: torch.device | str = "cpu", streams=None) -> Loaders:
    """Train and validation loaders with persistent workers; call `loaders.epoch.value = e` before epoch e.

    Augmentations are seeded per sample from (seed, epoch, id), so the workers live for the whole run (no re-fork
    per epoch) and an epoch's batches do not depend on the number of workers or on earlier epochs.
    streams: the splits as datasets IterableDatasets (data.stream); their train split replaces dsd["train"].
    """
    train_ds, val_ds = dsd["train"], dsd["validation"]
    epoch = SharedEpoch()
    cache = recipe.data.cache_images_mb
    set_transform(val_ds, make_transform([], recipe.data.image_size, class_info, train=False, cache_mb=cache))
    workers = data_workers(recipe.data.num_workers, device)
    # The sampler has its own generator: DataLoader draws a worker base seed from the global RNG when it starts its
    # workers (the first epoch only, with persistent workers), which would shift a globally seeded shuffle.
    shuffle = torch.Generator()
    if streams is not None:
        streamed = StreamedTrain(recipe.data, streams, class_info, recipe.train.seed, epoch)
        readers = min(workers, streamed.num_shards)  # datasets gives each worker whole shards
        train_loader = torch.utils.data.DataLoader(streamed, batch_size=recipe.train.batch_size, num_workers=readers,
                                                   persistent_workers=readers > 0, worker_init_fn=_one_thread_worker)
    else:
        set_transform(train_ds, make_transform(recipe.data.augment, recipe.data.image_size, class_info, train=True,
                                              seed=recipe.train.seed, epoch=epoch, cache_mb=cache))
        train_loader = torch.utils.data.DataLoader(train_ds, batch_size=recipe.train.batch_size,
                                                   sampler=torch.utils.data.RandomSampler(train_ds, generator=shuffle),
                                                   drop_last=len(train_ds) > recipe.train.batch_size,
                                                   num_workers=workers, persistent_workers=workers > 0,
                                                   worker_init_fn=_one_thread_worker)
    val_loader = torch.utils.data.DataLoader(val_ds, batch_size=recipe.train.eval_batch_size, num_workers=workers,
                                             persistent_workers=workers > 0, worker_init_fn=_one_thread_worker)
    return Loaders(train_loader, val_loader, epoch, shuffle, recipe.train.seed)


def check_resume(run: RunFolder, recipe: Recipe) -> None:
    """Refuse a resume whose recipe changes what the run trains; only RESUMABLE_KEYS (more epochs, ...) may differ."""
    changes = recipe_changes(recipe_to_dict(run.recipe()), recipe_to_dict(recipe), RESUMABLE_KEYS)
    if changes:
        raise RunFolderError(f"--resume: the recipe differs from the one '{run.path}' was trained with in "
                             f"{len(changes)} key(s) that change the run ({'; '.join(changes)}); resume with the same "
                             f"recipe (only {', '.join(k for k in RESUMABLE_KEYS if k.startswith('train.'))} and the "
                             "hub/data.root/num_workers keys may change), or train it anew with --overwrite or another "
                             "--output-dir")


def train(recipe: Recipe, *, resume: bool = False, overwrite: bool = False, dataset=None,
          split_file: str | Path | None = None) -> Path:
    """Train `recipe` into recipe.output_dir; returns the run folder.

    dataset: a datasets.Dataset / DatasetDict with image and mask columns, for data.source "dataset" (columns and
    classes in data.source_options). split_file: ids per split for a new run ({"train": [...], "validation": [...],
    "test": [...]} or a run's split.json) instead of data.split; a resumed run always keeps its own split.json.
    """
    out = Path(recipe.output_dir)
    run = RunFolder(out)
    run.check_start(resume=resume, overwrite=overwrite)
    if resume:
        check_resume(run, recipe)
        if split_file is not None:
            raise RunFolderError("--split-file is for a new run; a resumed run keeps the split in its split.json")
    check_settings(recipe)  # augmentations, loss, precision, tracker, ...: before any file is written
    streamed = is_streamed(recipe.data, dataset)
    if streamed and not recipe.train.max_steps:
        raise RecipeError("recipe key 'train.max_steps' is null, but the train split is streamed and a stream has no "
                          "length; set it (e.g. --set train.max_steps=5000); train.epochs then caps the passes")
    accelerator = make_accelerator(recipe, out)
    main = accelerator.is_main_process

    # Everything that can reject the recipe runs before the run folder is touched: a bad input leaves nothing behind.
    with accelerator.main_process_first():
        dsd, class_info = build_datasets(recipe.data, split_file=run / run.SPLIT if resume else split_file,
                                         dataset=dataset)
    set_seed(recipe.train.seed, device_specific=True)
    model = channels_last(build_model(recipe.model, class_info), recipe.train.channels_last)
    check_model_input(recipe, model)
    stats = audit_split(dsd, class_info)  # the split audit and class frequencies, for the report and class weights
    streamed_note = {"train_streamed": f"train is streamed: its ids and class statistics are those of the first "
                                       f"{len(dsd['train'])} rows only"} if streamed else {}
    if streamed:
        accelerator.print(f"train is streamed: class statistics from its first {len(dsd['train'])} rows; "
                          f"{recipe.train.max_steps} steps (train.max_steps)")
    weights = None
    if recipe.data.class_weights:
        freqs = frequencies(np.asarray(stats["splits"]["train"]["class_pixels"]))
        weights = torch.as_tensor(class_weights(freqs, recipe.data.class_weights), dtype=torch.float32)
    streams = open_stream(recipe.data, dataset) if streamed else None
    loaders = make_loaders(recipe, dsd, class_info, accelerator.device, streams)
    train_loader, val_loader = loaders.train, loaders.validation
    accelerator.print(f"data workers: {loaders.train.num_workers}"
                      f"{' (auto: data.num_workers is null)' if recipe.data.num_workers is None else ''}")
    loss_fn = build_loss(recipe.loss, class_info, weights)

    opt = recipe.optim
    optimizer = torch.optim.AdamW(model.parameters(), lr=opt.lr, weight_decay=opt.weight_decay, betas=tuple(opt.betas))
    if streamed:
        total_steps = recipe.train.max_steps
    else:
        total_steps = recipe.train.epochs * math.ceil(len(train_loader) / recipe.train.grad_accum)
        if recipe.train.max_steps:
            total_steps = min(total_steps, recipe.train.max_steps)
    # The schedule's length comes from this recipe, also on resume (the saved scheduler state holds only its step and
    # learning rates), so resuming with more train.epochs stretches the schedule to the new end.
    scheduler = build_scheduler(opt, optimizer, total_steps)
    model, optimizer, train_loader, val_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, val_loader, scheduler)
    loss_fn = loss_fn.to(accelerator.device)

    state = TrainerState()
    if resume:
        _load_last(accelerator, run)  # a damaged checkpoint is refused before any file is rewritten
        state = TrainerState(**run.trainer_state())
    if main:
        run.prepare(resume=resume, overwrite=overwrite)
        if resume:
            run.truncate_history(state.epoch)
        else:
            save_split(dsd, run / run.SPLIT, extra={"source": recipe.data.source, **streamed_note})
        run.write(run.RECIPE, recipe_to_dict(recipe))  # on resume: records what may have changed (e.g. more epochs)
        run.write(run.DATA_STATS, {**stats, "class_info": class_info.to_dict(), **streamed_note})
    accelerator.wait_for_everyone()
    if recipe.train.tracker:
        accelerator.init_trackers("hf_seg", config=_flat_config(recipe))

    pushes: list = []  # background uploads of intermediate bests (hub.push_every_best)
    bar = tqdm(total=total_steps, initial=state.global_step, desc=recipe.name, disable=not accelerator.is_local_main_process)
    try:
        _epochs(recipe, run, accelerator, model, optimizer, scheduler, loss_fn, train_loader, val_loader,
                loaders, class_info, state, total_steps, bar, pushes)
    finally:
        bar.close()  # before any error line, so the message is never glued to the progress bar
    accelerator.wait_for_everyone()
    if main:
        _maybe_push(recipe, out, final=True, pending=pushes)
    accelerator.end_training()
    return out


def _epochs(recipe, run, accelerator, model, optimizer, scheduler, loss_fn, train_loader, val_loader,
            loaders: Loaders, class_info, state: TrainerState, total_steps: int, bar, pushes: list) -> None:
    """The epoch loop: train, validate every eval_every epochs, save best/ and last/, append history."""
    out, main, opt = run.path, accelerator.is_main_process, recipe.optim
    stop = state.global_step >= total_steps
    for epoch in range(state.epoch + 1, recipe.train.epochs + 1):
        if stop:
            break
        set_seed(recipe.train.seed + epoch, device_specific=True)  # each epoch reproducible on its own, so resume = no break
        loaders.begin_epoch(epoch)  # this epoch's shuffle and augmentation seeds, read by the (persistent) workers
        start = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=accelerator.device)
        n_batches, data_seconds = 0, 0.0
        fetched = time.perf_counter()
        for batch in train_loader:
            data_seconds += time.perf_counter() - fetched  # time the loop waited for data: the loaders' share
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    logits = model(pixel_values=channels_last(batch["pixel_values"], recipe.train.channels_last)).logits
                loss = loss_fn(logits.float(), batch["labels"])
                _check_finite(loss, epoch, state.global_step + 1, scheduler, run)
                accelerator.backward(loss)
                if accelerator.sync_gradients and opt.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), opt.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.detach()
            n_batches += 1
            if accelerator.sync_gradients:
                state.global_step += 1
                bar.update(1)
                if state.global_step % recipe.train.log_every == 0:
                    step_loss, lr = loss.item(), scheduler.get_last_lr()[0]
                    bar.set_postfix(loss=f"{step_loss:.3f}", lr=f"{lr:.2e}")
                    if recipe.train.tracker:
                        accelerator.log({"train/loss": step_loss, "train/lr": lr}, step=state.global_step)
                if state.global_step >= total_steps:
                    stop = True
                    break
            fetched = time.perf_counter()
        _check_finite_weights(model, epoch, state.global_step, scheduler, run)
        train_loss = float(accelerator.reduce(loss_sum, reduction="mean")) / max(n_batches, 1)
        record = {"epoch": epoch, "step": state.global_step, "train_loss": train_loss,
                  "lr": scheduler.get_last_lr()[0], "train_seconds": time.perf_counter() - start,
                  "data_seconds": data_seconds}

        new_best = False
        if epoch % recipe.train.eval_every == 0 or epoch == recipe.train.epochs or stop:
            metrics = evaluate(model, val_loader, accelerator, class_info, loss_fn, desc=f"val e{epoch}",
                               memory_channels_last=recipe.train.channels_last)
            record.update({"val_loss": metrics["loss"], "val_mean_iou": metrics["mean_iou"],
                           "val_mean_dice": metrics["mean_dice"], "val_overall_accuracy": metrics["overall_accuracy"],
                           "val_per_category_iou": metrics["per_category_iou"]})
            if metrics["mean_iou"] > state.best_miou:
                state.best_miou, state.best_epoch, state.evals_since_best, new_best = metrics["mean_iou"], epoch, 0, True
                if main:
                    model_to_save = accelerator.unwrap_model(model)
                    save_dir_atomically(out / "best", lambda d: save_checkpoint(model_to_save, d,
                                                                                  recipe.data.image_size))
                    run.write(run.VAL_METRICS, {**metrics, "epoch": epoch, "step": state.global_step})
            else:
                state.evals_since_best += 1
            accelerator.print(f"epoch {epoch}: train loss {train_loss:.4f} | val {format_summary(metrics)} "
                              f"(best {100 * state.best_miou:.1f} @ {state.best_epoch})")
            patience = recipe.train.early_stopping_patience
            if patience and state.evals_since_best >= patience:
                accelerator.print(f"early stopping: no better val mIoU for {patience} evaluations")
                stop = True
        record["seconds"] = time.perf_counter() - start
        state.epoch = epoch
        _save_last(accelerator, out, state)
        if main:
            run.append_history(record)
            plot_curves(run.history(), run / run.CURVES, title=recipe.name)
            if new_best and not stop:  # the folder is complete (history, last/) before anything is published
                _maybe_push(recipe, out, final=False, pending=pushes)
        if recipe.train.tracker:
            accelerator.log(epoch_scalars(record, class_info), step=state.global_step)
            if "val_mean_iou" in record:
                log_val_images(accelerator, model, val_loader.dataset, class_info, state.global_step,
                               recipe.train.channels_last)


def _diverged(what: str, epoch: int, step: int, scheduler, run: RunFolder) -> TrainingDivergedError:
    kept = run.trainer_state()
    kept_text = (f"the checkpoints of epoch {kept['epoch']} (last/) and {kept['best_epoch']} (best/) are kept"
                 if kept else "no checkpoint was saved")
    return TrainingDivergedError(
        f"training diverged at epoch {epoch}, step {step}: {what} (lr {scheduler.get_last_lr()[0]:.3g}); "
        f"{kept_text}; lower optim.lr, keep optim.max_grad_norm set (e.g. 1.0) or use more optim.warmup_steps, then "
        f"train again with --overwrite")


def _check_finite(loss: torch.Tensor, epoch: int, step: int, scheduler, run: RunFolder) -> None:
    """Stop at the first NaN/inf loss, before it reaches the weights (one sync per step: cheap next to a step)."""
    if not bool(torch.isfinite(loss.detach())):
        raise _diverged(f"the loss is {loss.item()}", epoch, step, scheduler, run)


def _check_finite_weights(model: torch.nn.Module, epoch: int, step: int, scheduler, run: RunFolder) -> None:
    """No checkpoint with NaN/inf weights is ever saved (finite losses can still come from overflowing weights)."""
    bad = next((name for name, p in model.named_parameters() if not bool(torch.isfinite(p).all())), None)
    if bad is not None:
        raise _diverged(f"weight '{bad}' holds NaN/inf", epoch, step, scheduler, run)


def _load_last(accelerator: Accelerator, run: RunFolder) -> None:
    """Load last/state (model, optimizer, scheduler, RNG); damaged files are a one-line error naming the folder."""
    folder = run.last / "state"
    try:
        accelerator.load_state(str(folder))
    except Exception as e:  # noqa: BLE001  (torch.load/safetensors raise many types for damaged files)
        raise RunFolderError(f"--resume: the checkpoint in '{folder}' cannot be loaded ({type(e).__name__}: "
                             f"{one_line(e)[:200]}); restore it, or train again with --overwrite") from e


def _save_last(accelerator: Accelerator, out: Path, state: TrainerState) -> None:
    """Full state (model, optimizer, scheduler, RNG) + trainer bookkeeping, swapped in atomically."""
    staging = out / "checkpoints" / ".last-staging"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)  # left by a run killed mid-save
        staging.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging / "state"))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_json(staging / "trainer_state.json", state.__dict__)
        save_dir_atomically(out / "last", lambda d: staging.rename(d))
    accelerator.wait_for_everyone()


def _maybe_push(recipe: Recipe, out: Path, final: bool, pending: list) -> None:
    """Push the best checkpoint: at the end, and after each new best with hub.push_every_best.

    An intermediate best uploads in the background (training goes on at once) from its own folder; while one is still
    uploading, the next best is not pushed (the final push sends the last best anyway). A failed intermediate push is
    reported and training goes on; a failed final push is an error that says how to push the finished run by hand.
    """
    if not recipe.hub.push_to_hub or not (final or recipe.hub.push_every_best):
        return
    for future in [f for f in pending if f.done() or final]:
        pending.remove(future)
        try:
            future.result()
        except Exception as e:  # noqa: BLE001  (any upload failure of a background push)
            tqdm.write(f"warning: a background push of an earlier best failed ({type(e).__name__}: {one_line(e)})")
    if not final and pending:
        tqdm.write("new best checkpoint not pushed: the previous one is still uploading")
        return
    try:
        if final:
            push_run(out, recipe.hub.hub_model_id, private=recipe.hub.private)
        else:
            pending.append(push_run(out, recipe.hub.hub_model_id, private=recipe.hub.private,
                                    folder=out / "hub_upload_best", background=True))
    except HfSegError as e:
        if final:
            raise HfSegError(f"training finished, but the push failed: {e}; push it later with "
                             f"`hf-seg push {out} --repo-id {recipe.hub.hub_model_id}`") from e
        tqdm.write(f"warning: pushing the new best checkpoint failed ({e}); training goes on")


def _flat_config(recipe: Recipe) -> dict:
    """Tracker hyperparameters must be flat scalars."""
    return {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in flatten(recipe_to_dict(recipe)).items()}
