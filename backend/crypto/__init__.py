"""Field encryption with per-workspace data keys, wrapped by a master key (DESIGN.md invariant 7)."""
