"""Per-scan optimisation of the Gaussians against target images (`renderfm finetune`).

    views.py     held-out cameras (orbit and close-ups), dvr targets, make-gt cache folders
    sampling.py  each step's window: of a new random dvr view, or of a cached view
    loss.py      the image loss: 0.8 L1 + 0.2 (1 - SSIM) on RGB, plus an alpha term
    density.py   splitting coarse Gaussians, pruning faded ones, under a cap on the count
    finetune.py  the loop: Adam per field, decaying learning rates, budget and stop
    evaluate.py  held-out scores (PSNR, SSIM, foreground SSIM) before and after
"""
