"""The SER network (log-mel front end, compact backbone, FLAM pooling, heads)."""
