# The lab broker on Kubernetes: one per node (broker.yaml, a privileged DaemonSet, the only
# privileged part of the class). It builds students' labs in the node's kernel and runs
# their commands there, exactly as `labkit classroom up` does on one machine.
#
#   docker build -t labkit-broker -f images/classroom/broker.Dockerfile .
FROM debian:bookworm-slim

# bcc comes from the distribution (python3-bpfcc); the PyPI package named "bcc" is unrelated.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        ca-certificates python3 python3-venv python3-bpfcc bpfcc-tools libbpfcc \
        iproute2 iputils-ping tcpdump curl util-linux procps bpftool \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/labkit
COPY . /opt/labkit
RUN python3 -m venv --system-site-packages /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir /opt/labkit \
 && /opt/venv/bin/python -c "import labkit, bcc"
ENV PATH=/opt/venv/bin:$PATH

CMD ["python", "-m", "labkit.classroom.broker"]
