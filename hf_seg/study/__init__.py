"""hf_seg.study: plan a study, run it resumably, aggregate its run folders and draw its figures."""
