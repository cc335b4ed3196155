# Every command-line tool's --help, as a newcomer runs it: exit 0, whole sentences in the
# description, a help text for every option, and nothing made in the working directory
# (tools.certs --help once made a PKI in a folder named --help).
import os
import re
import subprocess
import sys

import pytest

from tools.board_files import ROOT

_TIMEOUT_S = 60
_SECTION = re.compile(r"^\S[^:]*:$")  # "options:", "positional arguments:", "TLS (...):" after a blank line


def _tools():
    """Each `python -m` tool: tools/X.py with a __main__ block, tools/X/__main__.py, bench."""
    found = []
    folder = os.path.join(ROOT, "tools")
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.endswith(".py"):
            with open(path) as f:
                if 'if __name__ == "__main__":' in f.read():
                    found.append("tools." + name[:-3])
        elif os.path.isfile(os.path.join(path, "__main__.py")):
            found.append("tools." + name)
    return found + ["bench"]


COMMANDS = [pytest.param(["-m", module], id=module) for module in _tools()]
COMMANDS += [pytest.param(["-m", "tools.mqtt", verb], id="tools.mqtt " + verb) for verb in ("pub", "sub")]
COMMANDS += [pytest.param([os.path.join(ROOT, "tools", "board_start.py")], id="board_start.py")]


def _help(tmp_path, command):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable] + command + ["--help"], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=_TIMEOUT_S, check=False)
    return result, sorted(os.listdir(cwd))


def _description(lines):
    """The paragraphs between the usage block and the first section."""
    if lines and lines[0].startswith("usage:"):
        lines = lines[lines.index(""):] if "" in lines else []
    text = []
    for line in lines:
        if _SECTION.match(line) and (not text or text[-1] == ""):
            break
        text.append(line)
    paragraphs = "\n".join(text).strip("\n").split("\n\n")
    return [paragraph for paragraph in paragraphs if paragraph.strip()]


def _options_without_help(lines):
    """Entries of the sections (an option or a positional at indent 2) with no text."""
    bare = []
    in_section = False
    for number, line in enumerate(lines):
        if _SECTION.match(line) and (number == 0 or lines[number - 1] == ""):
            in_section = True
            continue
        if not in_section or not re.match(r"^  \S", line):
            continue
        has_text = re.match(r"^  \S.*?\s{2,}\S", line)
        following = lines[number + 1] if number + 1 < len(lines) else ""
        continued = re.match(r"^ {4,}\S", following)
        if not has_text and not continued:
            bare.append(line.strip())
    return bare


@pytest.mark.parametrize("command", COMMANDS)
def test_help_is_whole_and_harmless(tmp_path, command):
    result, made = _help(tmp_path, command)
    assert result.returncode == 0, result.stdout + result.stderr
    assert made == [], "--help made %s in the working directory" % made
    lines = result.stdout.rstrip("\n").split("\n")
    description = _description(lines)
    assert description, result.stdout
    for paragraph in description:
        if not paragraph[0].isspace():  # prose, not an indented example
            assert paragraph.rstrip().endswith((".", ".)")), "cut short: %r" % paragraph
    assert _options_without_help(lines) == [], result.stdout


def test_the_tools_are_found():
    found = _tools()
    for module in ("tools.certs", "tools.services", "tools.board_files", "tools.simboard", "tools.mp_lane",
                   "tools.mqtt", "tools.sim7600_emu", "tools.vboard", "bench"):
        assert module in found, found


def test_services_without_a_command_is_a_usage_error(tmp_path):
    result, made = _help(tmp_path, ["-m", "tools.services"])  # ends in --help: is asked
    assert result.returncode == 0 and made == []
    bare = subprocess.run([sys.executable, "-m", "tools.services"], cwd=ROOT, capture_output=True, text=True,
                          timeout=_TIMEOUT_S, check=False)
    assert bare.returncode == 2 and "usage: python -m tools.services -- COMMAND" in bare.stderr
