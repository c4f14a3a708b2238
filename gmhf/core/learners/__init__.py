"""Meta-learners: the MAML family, Reptile and ProtoNet, batched across tasks with `torch.func`.

Each learner registers through the `gmhf_learners` hook (the built-ins in
`gmhf.plugins.builtin`), so `Registry.learners["maml"]` and a plugin's learner are used alike.
"""

from gmhf.core.learners.base import MetaLearner
from gmhf.core.learners.maml import ANIL, MAML, FirstOrderMAML
from gmhf.core.learners.protonet import ProtoNet
from gmhf.core.learners.reptile import Reptile
from gmhf.core.networks import mlp

__all__ = ["ANIL", "MAML", "FirstOrderMAML", "MetaLearner", "ProtoNet", "Reptile", "mlp"]
