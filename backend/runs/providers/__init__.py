"""Model providers behind one streaming interface: mock (built in), anthropic (official SDK), openai-compatible."""
