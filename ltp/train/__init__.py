"""Building models: the training loop and losses, threshold calibration, the fine-tune and
LTP stages, recipes and their cards, builds from the user's own data, and the baselines every
build is compared with."""
