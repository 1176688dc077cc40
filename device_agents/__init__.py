"""Code that runs on the edge devices, plus the host-side helper that packs it (bundle.py)."""
