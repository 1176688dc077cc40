"""The training stages and what they share: config, runner, datasets, fitting, pruning, SSL."""
