"""RenderFM: CT scans to 6D Gaussians, rendered in real time (after Render-FM, arXiv 2505.17338)."""
