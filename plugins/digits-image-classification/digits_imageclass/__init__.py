"""Image classification dataset type for digits: one folder of images per class."""
