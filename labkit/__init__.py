"""labkit: a Jupyter teaching lab for Cilium native-routing networking.

    import labkit
    lab = labkit.connect()          # the embedded lab "default"
    lab.up(); lab.apply()
    lab.pods

Heavy modules (pandas, bcc) load on first use, so the CLI starts fast.
"""
from .errors import LabError

__all__ = ["LabError", "connect", "Lab"]


def __getattr__(name: str):
    if name in ("connect", "Lab"):
        from . import lab
        return getattr(lab, name)
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")
