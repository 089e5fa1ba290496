"""hf_seg.sam: SAM zero-shot with oracle prompts from the ground truth, and its comparison with trained models."""
