"""Judging pictures: PSNR, SSIM, MS-SSIM and masked variants (metrics.py), and LPIPS from local
weights (lpips.py). `renderfm compare` (compare.py, beside api.py) scores RenderFM with them."""
