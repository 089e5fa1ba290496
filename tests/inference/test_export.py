"""hf-seg export: ONNX (dynamo, dynamic height/width) that onnxruntime runs with the same logits as torch, checked on
a real CamVid image at two sizes; bad paths are one-line errors that write nothing."""

import subprocess
import sys

import numpy as np
import onnxruntime
import pytest
import torch

from hf_seg.inference.export import TOLERANCE, export_onnx
from hf_seg.labels import CAMVID
from hf_seg.models import build_model
from hf_seg.recipe import ModelConfig
from helpers.cli import cli, error_lines


@pytest.fixture(scope="module")
def unet_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("unet")
    torch.manual_seed(0)
    build_model(ModelConfig(arch="unet", encoder="resnet18", encoder_depth=3,
                            options={"decoder_channels": [32, 16, 8]}), CAMVID).save_pretrained(folder)
    return folder


def test_export_matches_onnxruntime_on_a_real_image_at_two_sizes(unet_folder, camvid_root, tmp_path):
    image = sorted((camvid_root / "test").glob("*.png"))[0]
    out = tmp_path / "unet.onnx"
    checks = export_onnx(unet_folder, out, image)
    assert [c.size for c in checks] == [(256, 320), (352, 480)]  # the training default, then the image (360x480) to 32s
    assert all(c.max_abs_diff <= TOLERANCE and c.argmax_agreement > 0.999 for c in checks)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"pixel_values": np.zeros((1, 3, 96, 160), dtype=np.float32)})
    assert logits.shape == (1, 11, 96, 160)  # any other size too: height and width are dynamic


def test_export_cli_prints_the_diff_and_refuses_bad_paths(unet_folder, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hf_seg", "export", str(unet_folder), "--onnx",
                           str(tmp_path / "m.onnx")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "max abs logit diff" in proc.stdout and (tmp_path / "m.onnx").is_file()
    code, err = cli("export", str(unet_folder), "--onnx", str(tmp_path / "m.onnx"))
    assert code == 2 and "already exists" in error_lines(err)[0]
    code, err = cli("export", str(unet_folder), "--onnx", str(tmp_path / "m.txt"))
    assert code == 2 and "must end in .onnx" in error_lines(err)[0] and not (tmp_path / "m.txt").exists()
    code, err = cli("export", str(unet_folder), "--onnx", str(tmp_path / "n.onnx"), "--image", str(tmp_path / "no.png"))
    assert code == 2 and "--image" in error_lines(err)[0] and not (tmp_path / "n.onnx").exists()
