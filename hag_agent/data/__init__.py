"""Data formats: task suites and their cases, search records, append-only JSONL logs.

- `cases`: one suite case (the JSONL line's schema) and the metric each needs;
- `suites`: the built-in suites, suite files and the loader every command shares;
- `generators`: the seeded generators of the built-in suites and the hand-written translations;
- `search_records`: what a search writes per case, and the one reader of search files;
- `jsonl_log`: durable appends and tolerant reads of JSONL files.

Just above the contracts layer: it makes no model call and may import only the contracts
(errors, tasks, hyperparameters); the metrics, the search engine and the jobs build on it.
"""
