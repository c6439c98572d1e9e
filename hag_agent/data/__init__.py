"""Task suites: the JSONL case format, the built-in generators and the hand-written translations."""
