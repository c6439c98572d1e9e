"""The search for each case's best decoding configuration: one engine, pluggable parts.

`hag_agent.search.engine.evaluate_case` scores configurations for one case and returns its
`SearchRecord`. What it evaluates plugs in: a strategy (`strategies`: the paper's two-stage
search, the exhaustive ladder grid; `grid_scoring.PlanGrid`: a grid plan's list), a sampler
(`sampling.BackendSampler`: a served or embedded model; `grid_samples.PrecomputedSampler`: the GPU
grid sampler's files) and a scorer. Where the cases run is an executor (`executor`: the local
asyncio pool; `ray_executor`: Ray actors, each running `case_worker` with one backend, fed by
`worker_pool`, connected by `ray_cluster`); `run` is the resumable run over a case list into a
JSONL file, which only the driver writes. `space` holds the
ladders and settings; `grid_plan` and `grid_sampler` (a standalone script that imports nothing
from hag_agent) make and sample a grid plan.

Layer: above the core and its plug-ins, below evaluation and training. It may import the
contracts, data formats and metrics, the backends and the core; never evaluation, training or
the front ends. Library code only: progress goes to a `ProgressCallback`, errors are typed.
"""
