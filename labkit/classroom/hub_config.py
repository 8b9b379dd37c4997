# JupyterHub configuration of a labkit classroom (`jupyterhub -f` this file; `labkit classroom
# up` does). Every value comes from the classroom record that `labkit classroom up` wrote
# (labkit/classroom/hub.py: settings), so this file holds only the wiring.
# ruff: noqa: F821  (JupyterHub provides get_config)
from labkit.classroom import hub, roster

classroom = roster.load()
if classroom is None:
    raise SystemExit("no classroom record; run labkit classroom up")
s = hub.settings(classroom)
c = get_config()  # type: ignore[name-defined]

# where students reach it: 127.0.0.1 unless `labkit classroom up --ip` serves a room
c.JupyterHub.ip = s["ip"]
c.JupyterHub.port = s["port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = s["hub_port"]
c.ConfigurableHTTPProxy.command = [s["proxy"]]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{s['port'] + 80}"
c.JupyterHub.db_url = f"sqlite:///{s['dir']}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{s['dir']}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = f"{s['dir']}/jupyterhub-hub.pid"
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True

# who: the class list; passwords chosen at first login; the instructor is an admin
c.JupyterHub.authenticator_class = "firstuseauthenticator.FirstUseAuthenticator"
c.FirstUseAuthenticator.dbm_path = f"{s['dir']}/passwords.dbm"
c.FirstUseAuthenticator.create_users = True
c.FirstUseAuthenticator.min_password_length = 8
c.Authenticator.allowed_users = set(s["users"])
c.Authenticator.admin_users = set(s["admins"])

# each student's own notebook server: as the student, caged, on their copy of the labs
c.JupyterHub.spawner_class = hub.make_spawner_class()
c.Spawner.cmd = [s["student_python"], "-m", "jupyterhub.singleuser"]
c.Spawner.notebook_dir = "~/labs"
c.Spawner.default_url = s["default_url"]
c.Spawner.environment = {"PATH": s["path"], "LABKIT_CLASSROOM": "1", "LABKIT_LANG": s["lang"], **hub.student_env()}
c.Spawner.args = ["--LabApp.expose_app_in_browser=True"]  # window.jupyterapp: the class's browser test
c.Spawner.mem_limit = f"{s['memory_mb']}M"  # shown to the server; the cage enforces it
c.Spawner.cpu_limit = float(s["cpus"])
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 90

# services: labkit's own REST token, the idle culler, the instructor's class page
c.JupyterHub.services = [
    {"name": "labkit", "api_token": s["api_token"]},
    {
        "name": "idle-culler",
        "command": [s["python"], "-m", "jupyterhub_idle_culler", f"--timeout={s['idle_timeout']}"],
    },
    {
        "name": "class",
        "url": f"http://127.0.0.1:{s['service_port']}",
        "command": [s["python"], "-m", "labkit.classroom.instructor"],
        "display": True,
        "oauth_no_confirm": True,
    },
]
c.JupyterHub.load_roles = [
    {
        "name": "labkit",
        "scopes": ["admin:users", "admin:servers", "tokens", "list:users", "read:users", "access:servers"],
        "services": ["labkit"],
    },
    {
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    },
    {"name": "class-page", "scopes": ["access:services!service=class"], "users": sorted(s["admins"])},
]
