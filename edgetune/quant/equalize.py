"""Cross-layer equalisation and bias correction (placeholder, filled below)."""
