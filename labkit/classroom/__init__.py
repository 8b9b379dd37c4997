"""The classroom: one machine, many learners, none of them root.

- ``roster``: the class list, the students' Linux accounts, the classroom's record;
- ``limits``: per-student memory/CPU cages (cgroup v2, or v1 on hybrid machines) and counts;
- ``userns``: each student's user namespace, the owner of their labs' network namespaces;
- ``protocol``: the broker's wire format (JSON requests, SCM_RIGHTS descriptors);
- ``broker``: the root process that builds, reads and runs things in students' labs;
- ``client`` / ``relay``: the student's side, the backend contract through the broker;
- ``progress``: lesson check results per student;
- ``hub``: JupyterHub's configuration, spawner and processes; ``instructor``: the class page.
"""
