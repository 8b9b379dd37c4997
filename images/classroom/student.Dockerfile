# A student's notebook server on Kubernetes (Zero to JupyterHub's singleuser.image).
#
#   docker build -t labkit-student -f images/classroom/student.Dockerfile .
#
# Never privileged and never root: labkit inside talks to the node's lab broker (the
# DaemonSet in broker.yaml) through the socket mounted at /run/labkit-classroom, exactly as
# on a single classroom machine. The labs are copied into the image; KubeSpawner's home
# volume keeps each student's own copy.
FROM debian:bookworm-slim

# the tools a student runs in a lab (the broker runs them inside the lab's namespaces as the
# student, from the broker's image; these serve the student's own terminal)
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv tini \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/labkit
COPY pyproject.toml README.md /opt/labkit/
COPY labkit /opt/labkit/labkit
COPY cluster /opt/labkit/cluster
COPY labs /opt/labkit/labs
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir /opt/labkit \
 && /opt/venv/bin/python -c "import labkit.classroom.client"
ENV PATH=/opt/venv/bin:$PATH LABKIT_CLASSROOM=1

# KubeSpawner runs it as the student's uid (hub.extraConfig in z2jh-values.yaml)
USER 1000
WORKDIR /home/jovyan
ENTRYPOINT ["tini", "--"]
CMD ["jupyterhub-singleuser", "--LabApp.default_url=/lab"]
