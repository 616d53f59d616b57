"""Money and limits: workspace limits, budget reservations, the usage ledger and rollups, the model list."""
