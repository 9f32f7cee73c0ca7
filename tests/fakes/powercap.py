"""A fake Linux powercap tree on disk, laid out as the kernel lays out intel-rapl zones."""

from __future__ import annotations

from pathlib import Path

MAX_RANGE_UJ = 262143328850  # a real package's max_energy_range_uj


class PowercapTree:
    """``zones`` maps a zone folder (``intel-rapl:0`` or ``intel-rapl:0:1``) to its ``name``."""

    def __init__(self, root: Path, zones: dict[str, str], max_range_uj: int = MAX_RANGE_UJ) -> None:
        self.root = root
        self.paths: dict[str, Path] = {}
        for folder, name in zones.items():
            parts = folder.split(":")
            parent = root / ":".join(parts[:2]) if len(parts) == 3 else root
            path = parent / folder if len(parts) == 3 else root / folder
            path.mkdir(parents=True, exist_ok=True)
            (path / "name").write_text(name + "\n")
            (path / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
            (path / "energy_uj").write_text("0\n")
            self.paths[folder] = path
            if len(parts) == 3:  # the kernel also links every sub-zone at the top level
                (root / folder).symlink_to(path, target_is_directory=True)

    def set_uj(self, folder: str, value_uj: int) -> None:
        """Write a new counter value in place (same inode, as sysfs updates do)."""
        with open(self.paths[folder] / "energy_uj", "r+") as f:
            f.truncate(0)
            f.write(f"{value_uj}\n")

    def energy_file(self, folder: str) -> Path:
        return self.paths[folder] / "energy_uj"


def two_socket_tree(root: Path, **kw) -> PowercapTree:
    return PowercapTree(
        root,
        {
            "intel-rapl:0": "package-0",
            "intel-rapl:0:0": "core",
            "intel-rapl:0:1": "uncore",
            "intel-rapl:0:2": "dram",
            "intel-rapl:1": "package-1",
            "intel-rapl:1:0": "core",
            "intel-rapl:2": "psys",
        },
        **kw,
    )
