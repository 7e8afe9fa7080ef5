"""Course-compatible API for Stanford CS231n assignment 2 (``cs231n.*`` -> ``normlab.cs231n.*``).

Adapters over :mod:`normlab.functional` (never the other way round) with the course's
signatures, parameter dicts, weight layouts and conventions: BN momentum weighs the OLD
running value, running_var starts at zeros and tracks the biased variance, dropout's ``p``
keeps units, and randomness comes from the GLOBAL ``np.random`` stream. See docs/cs231n.md.

Submodules: ``layers``, ``layer_utils``, ``fast_layers``, ``optim``, ``solver``,
``gradient_check``, ``data_utils``, ``vis_utils``, ``classifiers`` (``fc_net``, ``cnn``).

``alias()`` makes the notebooks' own import lines (``from cs231n.layers import *``) resolve
to these modules; ``unalias()`` undoes it.
"""

from normlab.cs231n._alias import alias, unalias  # noqa: F401
