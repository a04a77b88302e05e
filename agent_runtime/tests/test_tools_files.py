"""File tools: confinement to W and W/projects, paging, binary files, overwrite, edits, listings (§5)."""

from __future__ import annotations

import os

import pytest

from agent_runtime.tests.agent_fakes import make_settings
from agent_runtime.tools import files


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path)


@pytest.fixture
def ws(settings):
    return settings.workspace


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "~/.picoclaw/config.json"])
async def test_paths_outside_the_workspace_are_refused(settings, path):
    (settings.home / ".picoclaw" / "config.json").write_text("{}")
    with pytest.raises(files.AccessDenied, match="outside the workspace"):
        await files.read_file(settings, {"path": path})
    with pytest.raises(files.AccessDenied, match="outside the workspace"):
        await files.write_file(settings, {"path": path, "content": "x"})


async def test_a_link_to_etc_and_an_escaping_directory_link_are_refused(settings, ws, tmp_path):
    (ws / "link").symlink_to("/etc")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (ws / "sub").mkdir()
    (ws / "sub" / "up").symlink_to(outside)
    for path in ("link/passwd", "sub/up/secret.txt"):
        with pytest.raises(files.AccessDenied, match="outside the workspace"):
            await files.read_file(settings, {"path": path})
    with pytest.raises(files.AccessDenied):
        await files.write_file(settings, {"path": "sub/up/new.txt", "content": "x"})
    assert not (outside / "new.txt").exists()


async def test_a_symlink_as_the_final_component_of_a_write_is_refused(settings, ws):
    (ws / "real.txt").write_text("original")
    (ws / "alias.txt").symlink_to(ws / "real.txt")
    for call in (files.write_file, files.append_file):
        with pytest.raises(files.AccessDenied, match="is a symbolic link"):
            await call(settings, {"path": "alias.txt", "content": "x", "overwrite": True})
    with pytest.raises(files.AccessDenied, match="is a symbolic link"):
        await files.edit_file(settings, {"path": "alias.txt", "old_text": "original", "new_text": "x"})
    assert (ws / "real.txt").read_text() == "original"


async def test_a_projects_symlink_is_an_allowed_root(settings, ws):
    shared = settings.home / "projects"
    (shared / "a").mkdir(parents=True)
    (ws / "projects").symlink_to(shared)
    assert await files.write_file(settings, {"path": "projects/a/b.txt", "content": "hi"}) == (
        "File written: projects/a/b.txt"
    )
    assert (shared / "a" / "b.txt").read_text() == "hi"
    assert "hi" in await files.read_file(settings, {"path": "projects/a/b.txt"})


async def test_read_file_pages_by_bytes(settings, ws):
    (ws / "f.txt").write_text("0123456789")
    first = await files.read_file(settings, {"path": "f.txt", "length": 4})
    assert first == (
        "[file: f.txt | total: 10 bytes | read: bytes 0-3]\n"
        "[TRUNCATED - file has more content. Call read_file again with offset=4 to continue.]\n\n0123"
    )
    last = await files.read_file(settings, {"path": "f.txt", "offset": 8})
    assert (
        last == "[file: f.txt | total: 10 bytes | read: bytes 8-9]\n[END OF FILE - no further content.]\n\n89"
    )


async def test_read_file_caps_length_and_refuses_binary(tmp_path):
    settings = make_settings(tmp_path, max_read_file_size=5)
    (settings.workspace / "f.txt").write_text("abcdefgh")
    assert (await files.read_file(settings, {"path": "f.txt", "length": 100})).endswith("\n\nabcde")
    (settings.workspace / "b.bin").write_bytes(b"ab\0cd")
    assert await files.read_file(settings, {"path": "b.bin"}) == "Error: file appears to be binary"


async def test_write_file_needs_overwrite_for_an_existing_file(settings, ws):
    assert (
        await files.write_file(settings, {"path": "d/new.txt", "content": "one"}) == "File written: d/new.txt"
    )
    assert await files.write_file(settings, {"path": "d/new.txt", "content": "two"}) == (
        "Error: file: d/new.txt already exists. Set overwrite=true to replace."
    )
    await files.write_file(settings, {"path": "d/new.txt", "content": "two", "overwrite": True})
    assert (ws / "d" / "new.txt").read_text() == "two"
    assert oct((ws / "d" / "new.txt").stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in (ws / "d").iterdir()] == ["new.txt"]


async def test_append_file_creates_then_appends(settings, ws):
    assert await files.append_file(settings, {"path": "log.txt", "content": "a"}) == "Appended to log.txt"
    await files.append_file(settings, {"path": "log.txt", "content": "b"})
    assert (ws / "log.txt").read_text() == "ab"


async def test_edit_file_needs_exactly_one_match(settings, ws):
    (ws / "e.txt").write_text("alpha\nbeta\nbeta\n")
    assert await files.edit_file(settings, {"path": "e.txt", "old_text": "gamma", "new_text": "x"}) == (
        "Error: old_text not found in file. Make sure it matches exactly"
    )
    assert await files.edit_file(settings, {"path": "e.txt", "old_text": "beta", "new_text": "x"}) == (
        "Error: old_text appears 2 times. Please provide more context to make it unique"
    )
    result = await files.edit_file(settings, {"path": "e.txt", "old_text": "alpha", "new_text": "ALPHA"})
    assert result.startswith("Edited e.txt\n--- a/e.txt\n+++ b/e.txt")
    assert "-alpha\n+ALPHA" in result
    assert (ws / "e.txt").read_text() == "ALPHA\nbeta\nbeta\n"


async def test_list_dir_sorts_by_name_and_caps(settings, ws):
    (ws / "b.txt").write_text("")
    (ws / "a").mkdir()
    (ws / "c.txt").write_text("")
    assert await files.list_dir(settings, {}) == "DIR:  a\nFILE: b.txt\nFILE: c.txt"
    many = ws / "many"
    many.mkdir()
    for i in range(1003):
        (many / f"f{i:04d}").write_text("")
    listing = (await files.list_dir(settings, {"path": "many"})).splitlines()
    assert len(listing) == 1001 and listing[-1] == "... (3 more)"


async def test_tilde_expands_to_home(settings, ws):
    os.makedirs(ws / "x", exist_ok=True)
    (ws / "x" / "f.txt").write_text("tilde")
    assert "tilde" in await files.read_file(settings, {"path": "~/.picoclaw/workspace/x/f.txt"})
