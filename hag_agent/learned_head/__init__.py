"""The learned proposer head: the serving model's embedding of a prompt -> HyperParams.

Beyond the paper: instead of generating a proposal, a small model (ridge regression or kNN),
trained on the same search data as the fine-tuned proposer, maps the prompt's mean-pooled
embedding and its task kind to a configuration. One pass over the prompt, no generation call.

- `targets`: the space each hyperparameter is predicted in, and back;
- `head`: `LearnedHead` (predict) and `HeadInfo` (what it was trained on);
- `fitting`: `fit_head` (ridge in closed form, alpha by leave-one-out; or kNN);
- `head_file`: `save_head`, `load_head`, `load_head_cached` (one small ``.npz`` file);
- `held_out`: held-out error against the train-mean, task-mean and task-prior baselines.

Needs NumPy; the graph imports this package only for proposer ``learned``
(`hag_agent.proposers.learned`).
"""

from hag_agent.learned_head.fitting import fit_head, fit_vectors
from hag_agent.learned_head.head import HeadInfo, HeadKind, LearnedHead
from hag_agent.learned_head.head_file import load_head, load_head_cached, save_head
from hag_agent.learned_head.held_out import HeadEvaluation, evaluate_head

__all__ = [
    "HeadEvaluation",
    "HeadInfo",
    "HeadKind",
    "LearnedHead",
    "evaluate_head",
    "fit_head",
    "fit_vectors",
    "load_head",
    "load_head_cached",
    "save_head",
]
