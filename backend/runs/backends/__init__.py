"""Queue, event stream and cancel signals behind narrow interfaces: in-process (`up`) and Redis (production)."""
