"""Debian packages a benchmark needs (wrk, openssh-server), installed on first use."""

import os
import subprocess


def ensure_debian_package(package: str, *, installed: bool) -> None:
    """Install `package` with apt-get unless `installed`; refresh the index once if needed."""
    if installed:
        return
    print(f"installing {package} from Debian's packages", flush=True)
    install = ["apt-get", "install", "-y", "-q", package]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode == 0:
        return
    subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
    result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"could not install {package}: {result.stderr.strip()[-2000:]}")
