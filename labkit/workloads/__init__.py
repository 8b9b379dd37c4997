"""Programs that run inside lab pods in place of container images (stdlib only, run as scripts)."""
