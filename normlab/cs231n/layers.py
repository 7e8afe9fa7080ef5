"""The course's ``cs231n.layers``: ``from normlab.cs231n.layers import *`` in the notebooks.

Every layer is an adapter over :mod:`normlab.functional` with the course's signatures,
parameter dicts and conventions (see ``docs/cs231n.md``).
"""

from normlab.cs231n._basic import *  # noqa: F401,F403
from normlab.cs231n._basic import __all__ as _basic_all
from normlab.cs231n._conv import *  # noqa: F401,F403
from normlab.cs231n._conv import __all__ as _conv_all
from normlab.cs231n._norm import *  # noqa: F401,F403
from normlab.cs231n._norm import __all__ as _norm_all

__all__ = [n for n in _basic_all + _norm_all + _conv_all if not n.endswith("_hyper")]
