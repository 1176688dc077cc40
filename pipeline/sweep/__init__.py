"""The compression sweep (docs/sweep.md): several pipeline runs sharing cached stages, every variant
benchmarked on every device in one job, recorded in the results store, and one comparison report."""
