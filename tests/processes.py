"""Process helpers for tests that start real servers."""

from __future__ import annotations

import os
from pathlib import Path


def postgres_pids_under(root: Path) -> list[int]:
    """Live postgres processes whose cwd or command line points into `root` (independent of the module)."""
    root_s = str(root.resolve())
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat_line = Path(f"/proc/{entry.name}/stat").read_text()
            if stat_line.rsplit(")", 1)[1].split()[0] == "Z":
                continue
            comm = Path(f"/proc/{entry.name}/comm").read_text().strip()
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            try:
                cwd = os.readlink(f"/proc/{entry.name}/cwd")
            except OSError:
                cwd = ""
        except (OSError, IndexError):
            continue
        if "postgres" not in comm and "postgres" not in cmdline:
            continue
        if cwd == root_s or cwd.startswith(root_s + "/") or root_s in cmdline:
            pids.append(int(entry.name))
    return pids
