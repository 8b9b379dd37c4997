"""Kubernetes objects checked against Kubernetes' own schemas, offline.

The OpenAPI-derived JSON schemas of every Kubernetes release ship inside the PyPI package
``kubernetes-validate``; labkit checks each manifest against the strict schemas (unknown
fields refused, as ``kubectl apply`` does by default) of the Kubernetes release its kind
cluster runs, before anything of the lab changes. A failure is one line: the field's path
and what is wrong with it.
"""

from __future__ import annotations

from typing import Any

from .errors import LabError

KUBERNETES = "1.33"  # kindest/node v1.33.1, the kind backend's node image (labkit/live/versions.py)


def problem(doc: dict[str, Any]) -> str | None:
    """None if ``doc`` is a valid object of its kind, else ``<field path>: <what is wrong>``."""
    from kubernetes_validate import utils  # loads jsonschema and the bundled schemas: only when checking

    try:
        utils.validate(doc, KUBERNETES, strict=True)
    except utils.SchemaNotFoundError:
        return f"apiVersion: {doc.get('apiVersion')!r} has no kind {doc.get('kind')!r} in Kubernetes {KUBERNETES}"
    except utils.ValidationError as e:
        where = _path(list(e.absolute_path)) or "(the object)"
        return f"{where}: {_short(e.message)}"
    except (TypeError, KeyError, ValueError, RecursionError) as e:  # a document the validator cannot walk
        return f"(the object): cannot be checked against the schema ({type(e).__name__})"
    except (utils.VersionNotSupportedError, utils.InvalidSchemaError) as e:
        raise LabError(
            f"the bundled Kubernetes schemas cannot be used: {e.message}; reinstall kubernetes-validate"
        ) from None
    return None


def _path(parts: list[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _short(message: str, limit: int = 160) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 3] + "..."
