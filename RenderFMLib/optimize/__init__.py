"""Per-scan optimisation of the Gaussians against target images (`renderfm finetune`).

    views.py     training and held-out cameras (orbit and close-ups) and their target images
    loss.py      the image loss: 0.8 L1 + 0.2 (1 - SSIM) on RGB, plus an alpha term
    density.py   splitting coarse Gaussians, pruning faded ones, under a cap on the count
    finetune.py  the loop: Adam per field, crops of full-resolution views, budget and stop
    evaluate.py  held-out scores (PSNR, SSIM, foreground SSIM) before and after
"""
