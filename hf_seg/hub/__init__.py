"""hf_seg.hub: model cards rendered from run folders, and publishing a run's best checkpoint to the Hub."""

from hf_seg.hub.card import HubError, read_run, render_card
from hf_seg.hub.upload import build_upload_folder, describe_upload, push_results, push_run, upload

__all__ = ["HubError", "build_upload_folder", "describe_upload", "push_results", "push_run", "read_run", "render_card", "upload"]
