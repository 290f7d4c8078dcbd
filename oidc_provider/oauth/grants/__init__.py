"""OAuth grant types, one module each."""
