"""Sunnybrook left-ventricle segmentation data for digits (a ``digits.plugins`` plugin)."""
