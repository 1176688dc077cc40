"""Host side of the edge-deployment pipeline: train, compress, convert, deploy, benchmark, report."""
