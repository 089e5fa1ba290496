"""hf_seg.bench: efficiency (parameters, FLOPs, speed and memory) and the training-step and trainer benchmarks."""
