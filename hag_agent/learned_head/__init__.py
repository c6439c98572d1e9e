"""The learned proposer head: the serving model's embedding of a prompt -> HyperParams.

Beyond the paper: instead of generating a proposal, a small model (ridge regression or kNN),
trained on the same search data as the fine-tuned proposer, maps the prompt's mean-pooled
embedding and its task kind to a configuration. One pass over the prompt, no generation call.

This package is what a run needs (a plug-in: it may import the contracts and policy layer only):

- `targets`: the space each hyperparameter is predicted in, and back;
- `head`: `LearnedHead` (predict) and `HeadInfo` (what it was trained on);
- `head_file`: `save_head`, `load_head`, `load_head_cached` (one small ``.npz`` file).

Fitting a head and its held-out report are a training job: `hag_agent.training.head_fitting`
(`fit_head`, `fit_vectors`), `hag_agent.training.head_evaluation` and
`hag_agent.training.head_training` (`train_head`). Needs NumPy; the graph imports this package
only for proposer ``learned`` (`hag_agent.proposers.learned`).
"""

from hag_agent.learned_head.head import HeadInfo, HeadKind, LearnedHead
from hag_agent.learned_head.head_file import load_head, load_head_cached, save_head

__all__ = [
    "HeadInfo",
    "HeadKind",
    "LearnedHead",
    "load_head",
    "load_head_cached",
    "save_head",
]
