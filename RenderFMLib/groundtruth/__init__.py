"""Reference renderers: ground truth for training and comparison (dvr, pathtraced, Slicer native)."""
