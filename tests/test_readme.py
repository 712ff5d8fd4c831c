"""README's "A first look" works when pasted: its shell blocks run in order, in one bash, in a
scratch directory where `spacereg serve` runs as the README's first command starts it."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from registry.access.roles import EDITOR, UNIFIED_ROLE_IDS
from tests.processes import RegistryProcess
from tests.schema import openapi_document
from tests.servers import free_port

README = Path(__file__).parent.parent / "README.md"
DEFAULT_URL = "http://127.0.0.1:8080"
CURL_TIMED_OUT = 28  # curl's status when --max-time ends it, as the README says
RUN_TIMEOUT_S = 120


def first_look_commands() -> list[str]:
    """The commands of the section's ```sh blocks, backslash-continued lines joined."""
    text = README.read_text()
    section = text.split("## A first look", 1)[1].split("\n## ", 1)[0]
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL):
        pending = ""
        for line in block.splitlines():
            pending += line + "\n"
            if not line.endswith("\\"):
                commands.append(pending.rstrip("\n"))
                pending = ""
    return commands


def run_in_one_shell(commands: list[str], cwd: Path, env: dict[str, str]) -> list[tuple[int, str]]:
    """Each command's exit status and output, run one after the other in one bash."""
    marker = "@@done@@"
    script = "".join(f'{command}\nprintf "\\n{marker} %d\\n" $?\n' for command in commands)
    done = subprocess.run(
        ["bash", "--noprofile", "--norc"],
        input=script,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    parts = done.stdout.split(f"\n{marker} ")
    results = []
    for part, following in itertools.pairwise(parts):
        output = part.split("\n", 1)[1] if results else part
        results.append((int(following.split("\n", 1)[0]), output))
    assert len(results) == len(commands), (done.stdout, done.stderr)
    return results


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_a_first_look_runs_as_pasted(tmp_path: Path) -> None:
    commands = first_look_commands()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # What `pip install -e .` puts in .venv/bin: the spacereg command.
    spacereg = tmp_path / ".venv" / "bin" / "spacereg"
    spacereg.parent.mkdir(parents=True)
    spacereg.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m registry "$@"\n')
    spacereg.chmod(0o755)
    server = RegistryProcess(tmp_path / "var", port)  # as `spacereg serve` in tmp_path
    server.start()
    try:
        pasted = [c.replace(DEFAULT_URL, url) for c in commands]
        results = run_in_one_shell(pasted, tmp_path, server.env)
    finally:
        server.stop()

    for command, (status, output) in zip(commands, results, strict=True):
        allowed = {0, CURL_TIMED_OUT} if "--max-time" in command else {0}
        assert status in allowed, (command, status, output)
    by_command = dict(zip(commands, (output for _, output in results), strict=True))

    def output_of(start: str) -> str:
        return next(out for command, out in by_command.items() if command.startswith(start))

    drives = json.loads(output_of('curl -s -H "Authorization: Bearer $TOKEN" $URL/graph'))
    assert [d["driveAlias"] for d in drives["value"]] == ["personal/einstein"]
    invited = json.loads(output_of("curl -s -X POST"))
    assert [p["roles"] for p in invited["value"]] == [[UNIFIED_ROLE_IDS[EDITOR]]]
    assert (tmp_path / "notes.txt").is_file()
    page = json.loads(output_of('curl -s -H "Authorization: Bearer $TOKEN" "$URL/api/v1/changes'))
    assert page["cursor"].isdigit()
    stream = output_of("curl -s -N")
    events = openapi_document()["paths"]["/api/v1/events"]["get"]["responses"]["200"]
    assert re.fullmatch(events["content"]["text/event-stream"]["schema"]["pattern"], stream)
    assert "event: content\n" in stream, stream
    assert "notes.txt" in stream, stream
    puts = [out for command, out in by_command.items() if command.startswith("curl -s -o /dev")]
    assert puts == ["423\n", "204\n"]  # locked, then written with the lock's token
