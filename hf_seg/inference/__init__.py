"""hf_seg.inference: predictions on new images (whole image or sliding window, flip TTA) and their files."""
