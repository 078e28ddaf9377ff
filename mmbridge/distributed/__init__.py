"""Scale-out on Ray (the extra ``mmbridge[ray]``): evaluations and batch inference over a pool of actors.

Nothing here imports Ray until a run uses it: ``import mmbridge`` and ``mmbridge --help`` stay light.
``RayOptions`` says where and how wide; ``ray_batch`` answers a list of requests on the cluster
(results in input order, a failed item as its exception); ``mmbridge eval --executor ray`` and
``evaluate(..., executor=RayOptions(...))`` run an evaluation there.
"""

from __future__ import annotations

from .options import RayOptions

__all__ = ["RayOptions", "ray_batch"]


def ray_batch(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - the signature is batch.ray_batch's
    from .batch import ray_batch as run

    return run(*args, **kwargs)
