"""The built-in proposers, one small module each, found by name through `hag_agent.proposing`.

- `default`: the decoder defaults (`DEFAULT_PARAMS`);
- `fixed`: the caller's configuration (``fixed_params``);
- `prior`: the task prior;
- `random_draw`: ``random``, a configuration drawn reproducibly from the seed and the prompt;
- `self_proposal`: ``self`` (the model proposes: HAG) and ``self-tuned`` (the same, answered by a
  fine-tuned proposer);
- `learned`: a learned head maps the prompt's embedding to a configuration (needs NumPy);
- `oracle`: the best configuration a search found for the case;
- `min_p`: ``min-p``, min-p sampling, a training-free adaptive baseline from the literature;
- `fitted_prior`: ``fitted-prior``, the configuration refitted per task kind on search records
  (the strongest baseline that ignores the query).

A plug-in layer: these modules may import the core, the contracts, the data formats and the
learned head, never the search, jobs or front ends. Nothing here is imported until a proposer
is asked for by name.
"""
