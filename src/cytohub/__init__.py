"""cytohub: public cytopathology image corpora as clean, documented Hugging Face datasets.

The helpers for users of built datasets are imported on first use (they need `datasets`, which is slow to
import): `align_labels` and `concat` (cytohub.combine), `to_detection` and `to_segmentation`
(cytohub.tasks).
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cytohub")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

from cytohub.errors import CytohubError  # noqa: E402

_LAZY = {"align_labels": "cytohub.combine", "concat": "cytohub.combine", "to_detection": "cytohub.tasks",
         "to_segmentation": "cytohub.tasks"}

__all__ = ["CytohubError", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cytohub' has no attribute {name!r}")
