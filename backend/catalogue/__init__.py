"""The model catalogue: which providers and models exist and what parameters each accepts."""
