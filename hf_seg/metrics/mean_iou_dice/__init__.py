"""Marks the evaluate module folder as package data; evaluate.load(METRIC_PATH) loads mean_iou_dice.py from here."""
