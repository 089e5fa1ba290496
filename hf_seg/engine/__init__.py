"""hf_seg.engine: the training loop, the evaluation loop and the runtime they share (accelerator, precision)."""
