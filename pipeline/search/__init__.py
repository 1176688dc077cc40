"""The model search: an Optuna study over the compression recipes, timed on the devices (docs/search.md)."""
